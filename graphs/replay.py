"""Exact replay, forks, and diffs of stored sessions.

A replay rebuilds the session's graph by name, serves every model call from the record
(checking request hashes, loading no weights), answers interrupts with the recorded human
inputs, stores the result as a new session (mode ``replay``, parent = original) and checks
that its beliefs and decisions equal the original's. A fork replays up to step ``k`` and
then runs live with changed models, recording its lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinmen.graphs.definition import RunMode
from tinmen.graphs.session import (
    SessionResult,
    SessionSpec,
    check_bindings,
    check_seed,
    start_session,
)
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm

from tinmen.errors import ConfigError, ReplayDivergence


@dataclass
class ReplayReport:
    original_id: str
    replay_id: str | None
    identical: bool
    calls_served: int = 0
    divergence: dict[str, Any] | None = None
    differences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"original": self.original_id, "replay": self.replay_id,
                "identical": self.identical, "calls_served": self.calls_served,
                "divergence": self.divergence, "differences": self.differences}


def _load(store: Store, session_id: str) -> tuple[orm.Session, list[Any], list[Any]]:
    with store.unit_of_work() as uow:
        row = uow.sessions.get(session_id)
        calls = uow.calls.for_session(row.id)
        human = [(h.step_index, h.response) for h in uow.records.human_inputs(row.id)]
    return row, calls, human


def _recorded_answers(human: list[Any], *, paused: bool = False) -> Any:
    """The recorded answers in order; past the last one a session that was ``paused``
    (stored as interrupted) pauses again where it did, anything else diverged."""
    answers = iter([r for _, r in human])

    def answer(payload: Any) -> Any:
        try:
            return next(answers)
        except StopIteration:
            if paused:
                return None
            raise ReplayDivergence("divergence: the replay asked for more human input than "
                                   "was recorded", detail="extra human input") from None
    return answer


def replay_session(store: Store, session_id: str, *, record: bool = True) -> ReplayReport:
    """Re-run a stored session from its record; see the module docstring."""
    row, calls, human = _load(store, session_id)
    spec = SessionSpec.of_row(row).derived(mode=RunMode.REPLAY, parent_id=row.id,
                                           fork_step=None, study_id=None, condition_id=None,
                                           rep=None)
    paused = row.status == orm.Status.INTERRUPTED
    try:
        result = start_session(store, spec, answer=_recorded_answers(human, paused=paused),
                               records=calls, record=record)
    except ReplayDivergence as exc:
        return ReplayReport(row.id, None, False, divergence={
            "step": exc.step, "role": exc.role, "call_index": exc.call_index,
            "detail": exc.detail, "message": str(exc)})
    differences = diff_sessions(store, row.id, result.session_id) if record else []
    unused = len(calls) - sum(len(s.calls) for s in result.recorder.steps)
    if unused > 0:
        differences.append(f"the replay made {unused} fewer model calls than the original")
    return ReplayReport(row.id, result.session_id, not differences,
                        calls_served=len(calls) - max(unused, 0),
                        differences=differences)


def fork_session(store: Store, session_id: str, at_step: int,
                 bindings: dict[str, ModelSpec], *, pool: Any, seed: int | None = None,
                 options: dict[str, Any] | None = None,
                 on_step: Any = None) -> SessionResult:
    """Replay ``session_id`` up to step ``at_step`` (exclusive), then run live with other
    models for some roles, another seed or other options (validated before anything
    runs)."""
    row, calls, human = _load(store, session_id)
    with store.unit_of_work() as uow:
        steps = {s.id: s.index for s in uow.records.steps(row.id)}
        call_steps = {(c.role, c.call_index): steps.get(c.step_id)
                      for c in uow.records.calls(row.id)}
    if not 0 <= at_step <= len(steps):
        raise ConfigError(f"--at-step must be between 0 and {len(steps)} for session {row.id}")
    prefix = [c for c in calls if (call_steps.get((c.role, c.call_index)) or 0) < at_step]
    base = SessionSpec.of_row(row)
    merged = {**base.bindings, **bindings}
    check_bindings(base.agent, merged)
    if seed is not None:
        check_seed(seed)
    spec = base.derived(mode=RunMode.FORK, parent_id=row.id, fork_step=at_step,
                        bindings=merged, seed=row.seed if seed is None else seed,
                        options=base.agent.resolve_options({**base.options, **(options or {})}),
                        study_id=None, condition_id=None, rep=None)
    return start_session(store, spec, pool=pool, answer=_recorded_answers(human),
                         records=prefix, on_step=on_step)


def _belief_key(b: orm.Belief) -> tuple[Any, ...]:
    return (b.subject, b.value, b.distribution, b.entropy, b.source, b.agent)


def _decision_key(d: orm.Decision) -> tuple[Any, ...]:
    return (d.kind, d.options, d.chosen, d.uncertainty, d.rationale, d.based_on, d.agent)


def diff_sessions(store: Store, a: str, b: str, *, limit: int = 20) -> list[str]:
    """Human-readable differences between two sessions' beliefs and decisions, in order."""
    with store.unit_of_work() as uow:
        a_id, b_id = uow.sessions.get(a).id, uow.sessions.get(b).id
        pairs = [("belief", [_belief_key(x) for x in uow.records.beliefs(a_id)],
                  [_belief_key(x) for x in uow.records.beliefs(b_id)]),
                 ("decision", [_decision_key(x) for x in uow.records.decisions(a_id)],
                  [_decision_key(x) for x in uow.records.decisions(b_id)])]
    out: list[str] = []
    for kind, left, right in pairs:
        for i, (x, y) in enumerate(zip(left, right)):
            if x != y:
                out.append(f"{kind} #{i} ({x[0]}): {str(x[1:3])[:120]} vs {str(y[1:3])[:120]}")
        if len(left) != len(right):
            out.append(f"{kind} count: {len(left)} vs {len(right)}")
    return out[:limit]
