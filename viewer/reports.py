"""Study reports for the studies page: graphs/report.py ``report`` run on demand into a
per-study folder of the app's cache (kept until ``refresh``), its PNGs served by name."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from tinmen.storage import Store

from tinmen.errors import NotFoundError

PLOT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.png$"
_LOCK = threading.Lock()  # matplotlib's pyplot is not thread-safe: one report at a time


def _folder(cache: Path, study_id: int) -> Path:
    return cache / f"study-{int(study_id)}"


def study_report(store: Store, cache: Path, study_id: int, *, refresh: bool = False
                 ) -> dict[str, Any]:
    """The report's table (markdown) and plot names; made once, remade on ``refresh``."""
    from tinmen.graphs.report import report

    with store.unit_of_work() as uow:
        uow.studies.get(study_id)  # NotFoundError (404) before anything is written
    folder = _folder(cache, study_id)
    with _LOCK:
        if refresh and folder.exists():
            shutil.rmtree(folder)
        done = folder / ".done"
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            report(store, study_id, folder)
            done.touch()
    tables = sorted(folder.glob("*.md"))
    return {"study": study_id, "plots": sorted(p.name for p in folder.glob("*.png")),
            "table": tables[0].read_text(encoding="utf-8") if tables else ""}


def plot_path(cache: Path, study_id: int, name: str) -> Path:
    """A plot of a made report; the name is a plain file name (checked by the route's
    pattern) and must resolve inside the study's folder."""
    folder = _folder(cache, study_id).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        raise NotFoundError(f"no plot '{name}' for study {study_id}; open the study page "
                            "first to make its report")
    return path
