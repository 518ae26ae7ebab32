"""The PostgreSQL test server: a fresh database per test, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.pool import NullPool

PG_URL_ENV = "TINMEN_TEST_PG_URL"


def pg_base_url() -> str:
    """The PostgreSQL test server; skipped where unset, but an error in CI (``CI=true``),
    so a broken CI setup cannot silently turn every PostgreSQL test into a skip."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{PG_URL_ENV} is unset in CI: .ci/run should export it from .ci/pg")
    pytest.skip(f"{PG_URL_ENV} is unset (run `bash .ci/pg` for a local server)")


@contextmanager
def pg_database(template: str = "template0") -> Iterator[str]:
    """A new database cloned from ``template``, dropped afterwards with its connections
    (a leftover checkpointer or Ray worker connection must not leak it). Names are random:
    several test runs share one server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(pg_base_url())
    name = f"tinmen_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
