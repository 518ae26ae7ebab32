"""tinmen.storage — the SQL store: ORM rows, repositories, unit of work, migrations."""

from tinmen.storage.uow import Store, UnitOfWork

__all__ = ["Store", "UnitOfWork"]
