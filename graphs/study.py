"""Studies: a grid of conditions × repetitions over one graph, run in parallel, resumable.

Every trial is a session linked to its study and condition, with a seed derived from
(study seed, condition key, rep). A session is written only when it completes, so an
interrupted study holds whole sessions only; running the same study again (``study_id=``)
skips the (condition, rep) pairs already completed and runs the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from tinmen.graphs.runtime import GraphDef
from tinmen.graphs.session import run_session
from tinmen.models.client import derive_seed
from tinmen.models.pool import ModelPool
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a stable key and the parameters the trial is built from."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyPlan:
    graph: GraphDef
    name: str
    conditions: list[Condition]
    reps: int
    inputs_for: Callable[[Condition, int], dict[str, Any]]
    bindings_for: Callable[[Condition], dict[str, ModelSpec]]
    options_for: Callable[[Condition], dict[str, Any]] = lambda c: {}
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyOutcome:
    study_id: int
    ran: int
    skipped: int
    failed: list[tuple[str, int, str]]


def create_or_resume(store: Store, plan: StudyPlan, study_id: int | None
                     ) -> tuple[int, dict[str, int], set[tuple[int, int]]]:
    """The study row, its condition ids by key, and the (condition, rep) pairs done."""
    with store.unit_of_work() as uow:
        if study_id is None:
            study = uow.studies.add(orm.Study(name=plan.name, graph=plan.graph.name,
                                              seed=plan.seed, config=plan.config))
        else:
            study = uow.studies.get(study_id)
        ids = {c.key: uow.studies.condition(study.id, c.key, c.params).id
               for c in plan.conditions}
        done = uow.sessions.done_reps(study.id)
        uow.commit()
        return study.id, ids, done


def run_study(store: Store, plan: StudyPlan, *, pool: ModelPool | None = None,
              workers: int = 1, study_id: int | None = None, progress: bool = True,
              stop_on_error: bool = True) -> StudyOutcome:
    """Run every missing (condition, rep) of ``plan``; see the module docstring."""
    pool = pool or ModelPool()
    sid, cond_ids, done = create_or_resume(store, plan, study_id)
    todo = [(c, r) for c in plan.conditions for r in range(plan.reps)
            if (cond_ids[c.key], r) not in done]
    failed: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def trial(cond: Condition, rep: int) -> None:
        run_session(store, plan.graph, plan.inputs_for(cond, rep), plan.bindings_for(cond),
                    pool=pool, seed=derive_seed(plan.seed, cond.key, rep),
                    options=plan.options_for(cond), study_id=sid,
                    condition_id=cond_ids[cond.key], rep=rep)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"study {sid} ({plan.graph.name})", total=len(todo))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
            futures = {ex.submit(trial, c, r): (c, r) for c, r in todo}
            for fut in as_completed(futures):
                cond, rep = futures[fut]
                exc = fut.exception()
                if exc is not None:
                    if stop_on_error:
                        for other in futures:
                            other.cancel()
                        raise exc
                    with lock:
                        failed.append((cond.key, rep, str(exc)))
                bar.advance(task)
    _mark(store, sid, "failed" if failed else "completed")
    return StudyOutcome(sid, len(todo) - len(failed), len(done), failed)


def _mark(store: Store, study_id: int, status: str) -> None:
    with store.unit_of_work() as uow:
        uow.studies.get(study_id).status = status
        uow.commit()
