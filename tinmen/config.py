"""Process-wide settings read from the environment, validated once.

``TINMEN_DB``      SQLAlchemy URL of the store, or a path ending in .db (default:
                   ``sqlite:///tinmen.db`` in the cwd).
``TINMEN_CACHE``   where converted packaged weights are cached (default ``~/.cache/tinmen``).
``TINMEN_OUT``     where images and reports are written (default ``./tinmen_out``).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///tinmen.db"


SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def db_url(explicit: str | None = None) -> str:
    """The store URL: an explicit value, else ``TINMEN_DB``, else a SQLite file in the cwd.

    A plain file path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` means that SQLite file.
    """
    url = explicit or os.environ.get("TINMEN_DB") or DEFAULT_DB_URL
    if "://" not in url and url.endswith(SQLITE_SUFFIXES):
        return f"sqlite:///{Path(url).expanduser()}"
    return url


def cache_dir() -> Path:
    path = Path(os.environ.get("TINMEN_CACHE") or Path.home() / ".cache" / "tinmen")
    path.mkdir(parents=True, exist_ok=True)
    return path


def out_dir() -> Path:
    path = Path(os.environ.get("TINMEN_OUT") or "tinmen_out")
    path.mkdir(parents=True, exist_ok=True)
    return path
