"""Alembic environment: runs on the connection tinmen passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from tinmen.storage.orm import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - tinmen always passes its own connection
    raise RuntimeError("run migrations through `tinmen db upgrade`")
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
