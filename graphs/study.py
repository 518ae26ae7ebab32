"""Studies: a grid of conditions × repetitions over one graph, run in parallel, resumable.

Every trial is a session linked to its study and condition, with a seed derived from
(study seed, condition key, rep). A session is written only when it completes, so an
interrupted study holds whole sessions only; running the same study again (``study_id=``)
skips the (condition, rep) pairs already completed and runs the rest.

Two executors run the trials: ``threads`` (default: one process, one shared model pool)
and ``ray`` (each trial a Ray task; all of them call one pool actor, so the cluster holds
one copy of each model, and write to the same store). Ray starts a local instance with
``workers`` CPUs, or joins the cluster named by ``RAY_ADDRESS``.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from tinmen.graphs.definition import AgentDef
from tinmen.graphs.session import SessionSpec, check_seed, start_session
from tinmen.models.client import derive_seed
from tinmen.models.pool import ModelPool
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, claims, orm

from tinmen.errors import ConfigError

EXECUTORS = ("threads", "ray")
MAX_REPS = 100_000  # as a grid file allows: more is a typo, not a study


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a stable key and the parameters the trial is built from."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudyPlan:
    graph: AgentDef
    name: str
    conditions: list[Condition]
    reps: int
    inputs_for: Callable[[Condition, int], dict[str, Any]]
    bindings_for: Callable[[Condition], dict[str, ModelSpec]]
    options_for: Callable[[Condition], dict[str, Any]] = lambda c: {}
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None  # how sessions import the agent again (default: its name)

    def session_spec(self, cond: Condition, rep: int, **placement: Any) -> SessionSpec:
        return SessionSpec.create(self.graph, self.inputs_for(cond, rep),
                                  self.bindings_for(cond), options=self.options_for(cond),
                                  seed=derive_seed(self.seed, cond.key, rep),
                                  ref=self.ref or self.graph.name, rep=rep, **placement)

    def validate(self) -> None:
        """Every condition's first session validated before the study is written."""
        if not 1 <= self.reps <= MAX_REPS:
            raise ConfigError(f"a study runs 1 … {MAX_REPS:,} repetitions of each condition, "
                              f"not {self.reps}")
        check_seed(self.seed)
        if not self.conditions:
            raise ConfigError("the study's grid has no conditions")
        for cond in self.conditions:
            self.session_spec(cond, 0)


# trials as they end: True (ran here), False (claimed by another process), or the error
Runs = Generator[tuple[Condition, int, bool | BaseException], None, None]


@dataclass
class StudyOutcome:
    study_id: int
    ran: int
    skipped: int
    failed: list[tuple[str, int, str]]
    claimed_elsewhere: int = 0  # grid points another process was running or had run
    models_loaded: list[dict[str, Any]] = field(default_factory=list)  # one entry per copy


def create_or_resume(store: Store, plan: StudyPlan, study_id: int | None
                     ) -> tuple[int, dict[str, int], set[tuple[int, int]]]:
    """The study row, its condition ids by key, and the (condition, rep) pairs done."""
    with store.unit_of_work() as uow:
        if study_id is None:
            study = uow.studies.add(orm.Study(name=plan.name, graph=plan.graph.name,
                                              graph_ref=plan.ref or plan.graph.name,
                                              graph_version=plan.graph.version,
                                              seed=plan.seed, config=plan.config))
        else:
            study = uow.studies.get(study_id)
            if study.graph != plan.graph.name:
                raise ConfigError(f"study {study.id} ran agent '{study.graph}', not "
                                  f"'{plan.graph.name}': resume it with the same agent")
            _check_same_plan(study, plan)
        ids = {c.key: uow.studies.condition(study.id, c.key, c.params).id
               for c in plan.conditions}
        done = uow.sessions.done_reps(study.id)
        uow.commit()
        return study.id, ids, done


def _check_same_plan(study: orm.Study, plan: StudyPlan) -> None:
    """A resume adds the missing sessions of *this* study: a plan with other conditions,
    another seed or other settings would mix two studies under one id."""
    import json

    def norm(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    stored = {c.key: norm(c.params) for c in study.conditions}
    wanted = {c.key: norm(c.params) for c in plan.conditions}
    problem = None
    if study.seed != plan.seed:
        problem = f"seed {study.seed}, not {plan.seed}"
    elif stored and stored != wanted:
        extra, missing = sorted(set(wanted) - set(stored)), sorted(set(stored) - set(wanted))
        changed = sorted(k for k in set(stored) & set(wanted) if stored[k] != wanted[k])
        parts = [f"{label} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                 for label, keys in (("new conditions", extra), ("missing conditions",
                                     missing), ("changed conditions", changed)) if keys]
        problem = "; ".join(parts)
    else:
        old = {k: v for k, v in (study.config or {}).items() if k != "reps"}
        new = {k: v for k, v in plan.config.items() if k != "reps"}
        if old and norm(old) != norm(new):
            keys = sorted(k for k in set(old) | set(new) if norm(old.get(k)) != norm(new.get(k)))
            problem = f"other settings ({', '.join(keys[:4])})"
    if problem:
        raise ConfigError(f"study {study.id} was planned differently ({problem}): resume it "
                          "with the command and options that started it, or start a new study")


def run_study(store: Store, plan: StudyPlan, *, pool: ModelPool | None = None,
              workers: int = 1, study_id: int | None = None, progress: bool = True,
              stop_on_error: bool = True, executor: str = "threads") -> StudyOutcome:
    """Run every missing (condition, rep) of ``plan``; see the module docstring."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'; choose one of {', '.join(EXECUTORS)}")
    if executor == "ray" and store.engine.url.get_backend_name() == "sqlite" and \
            store.engine.url.database in (None, "", ":memory:"):
        raise ConfigError("the Ray executor needs a store every worker can open; an in-memory "
                          "SQLite store cannot be shared (pass --db FILE.db)")
    plan.validate()
    sid, cond_ids, done = create_or_resume(store, plan, study_id)
    todo = ((c, r) for c in plan.conditions for r in range(plan.reps)
            if (cond_ids[c.key], r) not in done)  # streamed: never the whole grid in memory
    total = len(plan.conditions) * plan.reps - len(done)
    failed: list[tuple[str, int, str]] = []
    ran = elsewhere = 0
    loaded: list[dict[str, Any]] = []  # the models the study's pool held, as it ended
    pool = pool or ModelPool()
    runs = _on_ray(store, plan, sid, cond_ids, todo, workers, loaded) if executor == "ray" \
        else _on_threads(store, plan, sid, cond_ids, todo, workers, pool)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    # on stderr: stdout carries the command's result (--json)
    with Progress(*columns, disable=not progress, transient=False,
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(f"study {sid} ({plan.graph.name})", total=total)
        try:
            for cond, rep, result in runs:
                if isinstance(result, BaseException):
                    if stop_on_error:
                        raise result
                    failed.append((cond.key, rep, str(result)))
                ran += result is True
                elsewhere += result is False
                bar.advance(task)
        finally:
            runs.close()  # cancels what has not started
    _mark(store, sid, _final_status(store, sid, plan, bool(failed)))
    return StudyOutcome(sid, ran, len(done), failed, claimed_elsewhere=elsewhere,
                        models_loaded=loaded if executor == "ray" else pool.loaded())


def _trial(store: Store, plan: StudyPlan, sid: int, cond_id: int, cond: Condition, rep: int,
           pool: Any) -> bool:
    """Run one grid point if this process can claim it; False when another process has."""
    if not claims.claim(store, sid, cond_id, rep):
        return False
    try:
        start_session(store, plan.session_spec(cond, rep, study_id=sid, condition_id=cond_id),
                      pool=pool)
    except BaseException:
        claims.release(store, sid, cond_id, rep)
        raise
    return True


def _on_threads(store: Store, plan: StudyPlan, sid: int, cond_ids: dict[str, int],
                todo: Iterator[tuple[Condition, int]], workers: int,
                pool: ModelPool) -> Runs:
    """At most two trials per worker in flight, the next submitted as one ends."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        futures: dict[Future[bool], tuple[Condition, int]] = {}

        def submit(n: int) -> None:
            for c, r in itertools.islice(todo, n):
                futures[ex.submit(_trial, store, plan, sid, cond_ids[c.key], c, r, pool)] = \
                    (c, r)
        submit(2 * max(1, workers))
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    exc = fut.exception()
                    yield (*futures.pop(fut), exc if exc is not None else fut.result())
                submit(len(done))
        finally:
            for fut in futures:
                fut.cancel()


def _ray_trial(url: str, plan: StudyPlan, sid: int, cond_id: int, cond: Condition,
               rep: int, pool: Any) -> bool:
    """One trial inside a Ray worker: its model calls go to the study's shared pool actor
    (one copy of each model on the cluster); the store is opened for the trial."""
    store = Store.open(url, migrate=False)
    try:
        return _trial(store, plan, sid, cond_id, cond, rep, pool)
    finally:
        store.close()


def _on_ray(store: Store, plan: StudyPlan, sid: int, cond_ids: dict[str, int],
            todo: Iterator[tuple[Condition, int]], workers: int,
            loaded: list[dict[str, Any]]) -> Runs:
    try:
        import ray
    except ModuleNotFoundError as exc:
        from tinmen.models.registry import missing_dependency

        raise missing_dependency("ray", "--executor ray") from exc
    if not ray.is_initialized():  # started once per process; Ray shuts it down at exit
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else max(1, workers),
                 include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    from tinmen.models.remote import start_pool_actor

    url = store.engine.url.render_as_string(hide_password=False)
    pool = start_pool_actor(concurrency=4 * max(1, workers))
    remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)
    refs: dict[Any, tuple[Condition, int]] = {}

    def submit(n: int) -> None:  # a bounded window of tasks, refilled as they end
        for c, r in itertools.islice(todo, n):
            refs[remote.remote(url, plan, sid, cond_ids[c.key], c, r, pool)] = (c, r)
    submit(2 * max(1, workers))
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            where = refs.pop(ready[0])
            try:
                yield (*where, bool(ray.get(ready[0])))
            except ray.exceptions.RayTaskError as exc:
                yield (*where, exc.cause if isinstance(exc.cause, BaseException) else exc)
            submit(1)
    finally:
        for ref in refs:  # only unfinished ones: cancelling a finished task trips Ray
            ray.cancel(ref)
        loaded.extend(pool.loaded())
        ray.kill(pool.actor)  # the models it holds go with it


def _final_status(store: Store, sid: int, plan: StudyPlan, failed: bool) -> orm.Status:
    """Completed only when every grid point has its session (another process resuming the
    same study may still be running some: the study stays running for it to finish)."""
    if failed:
        return orm.Status.FAILED
    with store.unit_of_work() as uow:
        done = len(uow.sessions.done_reps(sid))
    complete = done >= len(plan.conditions) * plan.reps
    return orm.Status.COMPLETED if complete else orm.Status.RUNNING


def _mark(store: Store, study_id: int, status: orm.Status) -> None:
    with store.unit_of_work() as uow:
        uow.studies.get(study_id).status = status
        uow.commit()
