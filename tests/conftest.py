"""Shared fixtures. Torch runs single-threaded: on 2 cores, parallel test processes with
default thread counts run tiny models 18-100x slower."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/tinmen.db"


@pytest.fixture
def store(db_url):
    from tinmen.storage import Store

    s = Store.open(db_url)
    yield s
    s.close()


# ---------------------------------------------------------------- SQLite and PostgreSQL
from pg_stores import pg_database  # noqa: E402  (a plain module: test files import it too)

BOTH_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: runs on the PostgreSQL test server "
                                       "(TINMEN_TEST_PG_URL, set up by .ci/pg)")


@pytest.fixture(scope="session")
def pg_template():
    """A migrated database that each PostgreSQL test clones: migrating once per run instead
    of once per test (about 0.4 s each)."""
    from sqlalchemy.engine import make_url
    from tinmen.storage import Store

    with pg_database() as url:
        Store.open(url).close()
        yield make_url(url).database


@pytest.fixture(params=BOTH_STORES)
def any_db_url(request, tmp_path):
    """``db_url`` on both stores: a SQLite file, and a fresh migrated PostgreSQL database.
    A module whose tests all hold on both overrides ``db_url`` with it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tinmen.db"
        return
    with pg_database(request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture(params=BOTH_STORES)
def empty_db_url(request, tmp_path):
    """Like ``any_db_url`` but not migrated (for the migrations themselves)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    with pg_database() as url:
        yield url


@pytest.fixture
def pg_db_url(pg_template):
    """A fresh migrated PostgreSQL database only (tests of what SQLite does not offer)."""
    with pg_database(pg_template) as url:
        yield url


@pytest.fixture
def any_store(any_db_url):
    from tinmen.storage import Store

    s = Store.open(any_db_url)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Packaged-model conversions are cached per test session, never in the user's home."""
    cache = os.environ.get("TINMEN_TEST_CACHE") or str(tmp_path_factory.getbasetemp() /
                                                         "tinmen-cache")
    monkeypatch.setenv("TINMEN_CACHE", cache)
    monkeypatch.setenv("TINMEN_OUT", str(tmp_path_factory.getbasetemp() / "tinmen-out"))
