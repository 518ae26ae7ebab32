"""The recorder: every step, belief, decision, model call and human input of a session.

Rows are buffered in memory and written by :meth:`Recorder.flush` in one unit of work, so
a session that fails leaves nothing half-written, and a session paused for human input is
stored whole up to the pause (status ``interrupted``). Nodes call :meth:`belief` and
:meth:`decision`; the :class:`~tinmen.models.client.Models` of the session calls
:meth:`model_call` for every model call.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from tinmen.models.client import CallRecord
from tinmen.models.uncertainty import option_probs, option_signals
from tinmen.storage import Store, orm


def entropy_of(distribution: Mapping[str, float]) -> float:
    """Shannon entropy (nats) of a distribution given as option → probability."""
    return -sum(p * math.log(p) for p in distribution.values() if p > 0)


def decision_signals(options: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Entropy and margin of a decision's options from their ``score`` (``None`` where an
    option has no numeric score)."""
    scores = [o.get("score") for o in options]
    numbers = [float(x) for x in scores
               if isinstance(x, int | float) and not isinstance(x, bool)]
    if not numbers or len(numbers) != len(scores):
        return {"entropy": None, "margin": None}
    return option_signals(option_probs(numbers))


@dataclass
class _StepBuffer:
    index: int
    node: str
    agent: str | None
    checkpoint_id: str | None
    started: float = field(default_factory=time.perf_counter)
    duration_s: float = 0.0
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    saved_id: int | None = None
    saved_rows: int = 0
    saved_calls: int = 0
    counters: dict[str, int] = field(default_factory=dict)  # model call indices at entry


class Recorder:
    """Collects a session's analysis rows; see the module docstring."""

    def __init__(self, session: orm.Session, *, enabled: bool = True) -> None:
        self.session = session
        self.enabled = enabled
        self.steps: list[_StepBuffer] = []
        self.current: _StepBuffer | None = None
        self.loose: list[tuple[str, dict[str, Any]]] = []  # rows outside any step
        self.human: list[dict[str, Any]] = []
        self.agents: dict[str, dict[str, Any]] = {}
        self._saved_human = 0
        self.saved_human_before = 0  # human inputs stored by earlier runs of this session
        self._saved_loose = 0
        self._discard_ids: list[int] = []
        self._seq = itertools.count()  # one order over beliefs, decisions, calls, inputs
        self.on_step: Callable[[_StepBuffer], None] | None = None  # progress (the CLI)

    @classmethod
    def resume(cls, session: orm.Session, saved_steps: Sequence[tuple[int, int, str]],
               saved_human: int, next_seq: int = 0,
               saved_agents: Sequence[str] = ()) -> Recorder:
        """A recorder that appends to a stored session (resuming after a pause)."""
        rec = cls(session)
        rec.saved_human_before = saved_human
        rec._seq = itertools.count(next_seq)
        rec.agents = {name: {"seed": 0, "roles": [], "saved": True} for name in saved_agents}
        for step_id, index, node in saved_steps:
            rec.steps.append(_StepBuffer(index, node, None, None, saved_id=step_id))
        return rec

    # ----------------------------------------------------------------- steps
    @contextmanager
    def step(self, node: str, *, agent: str | None = None,
             checkpoint_id: str | None = None) -> Iterator[_StepBuffer]:
        """Attribute everything inside the block to one execution of ``node``."""
        buf = _StepBuffer(len(self.steps), node, agent, checkpoint_id)
        self._seen_agent(agent)
        self.steps.append(buf)
        previous, self.current = self.current, buf
        try:
            yield buf
        finally:
            buf.duration_s = time.perf_counter() - buf.started
            self.current = previous
            if self.on_step is not None:
                self.on_step(buf)

    @property
    def step_name(self) -> str | None:
        return self.current.node if self.current else None

    def discard_step(self, buf: _StepBuffer) -> None:
        """Forget a step that will run again (a node re-executed after an interrupt)."""
        self.steps.remove(buf)
        if buf.saved_id is not None:
            self._discard_ids.append(buf.saved_id)
        for i, other in enumerate(self.steps):
            other.index = i

    def agent(self, name: str, seed: int, roles: Sequence[str] = ()) -> None:
        self.agents[name] = {"seed": seed, "roles": list(roles)}

    def _seen_agent(self, name: str | None) -> None:
        """Every agent named by a step, belief or decision gets its ``agent`` row."""
        if name and name not in self.agents:
            from tinmen.models.client import derive_seed

            self.agent(name, derive_seed(self.session.seed, "agent", name))

    # ----------------------------------------------------------------- rows
    def _add(self, kind: str, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if kind in ("belief", "decision"):
            row["seq"] = next(self._seq)
            self._seen_agent(row.get("agent"))
        (self.current.rows if self.current else self.loose).append((kind, row))

    def belief(self, subject: str, value: Any, *, distribution: Mapping[str, float] | None = None,
               entropy: float | None = None, source: str = "model",
               agent: str | None = None) -> str:
        """Record what the agent believes about ``subject``; returns the subject."""
        dist = {str(k): float(v) for k, v in distribution.items()} if distribution else None
        if entropy is None and dist:
            entropy = entropy_of(dist)
        self._add("belief", {"subject": subject, "value": value, "distribution": dist,
                             "entropy": entropy, "source": source, "agent": agent})
        return subject

    def decision(self, kind: str, *, options: Sequence[Mapping[str, Any]], chosen: Any,
                 uncertainty: float | None = None, rationale: str | None = None,
                 based_on: Sequence[str] = (), agent: str | None = None) -> None:
        """Record a choice among scored ``options`` ([{"option", "score"}, ...]).

        The entropy and margin of the option distribution are computed here, the same way
        for every agent (``models/uncertainty.py``: the scores where they are probabilities,
        else their softmax); ``uncertainty`` stays what the agent says it is."""
        rows = [dict(o) for o in options]
        self._add("decision", {"kind": kind, "options": rows, "chosen": chosen,
                               "uncertainty": uncertainty, "rationale": rationale,
                               "based_on": list(based_on), "agent": agent,
                               **decision_signals(rows)})

    def metric(self, name: str, value: float, *, turn: int | None = None,
               meta: Mapping[str, Any] | None = None) -> None:
        self._add("metric", {"name": name, "value": float(value), "turn": turn,
                             "meta": dict(meta or {})})

    def prediction(self, model: str, example_id: str, *, label: float | None,
                   predicted: float | None, probability: float | None = None,
                   split: str = "test", meta: Mapping[str, Any] | None = None) -> None:
        self._add("prediction", {"model": model, "example_id": example_id, "label": label,
                                 "predicted": predicted, "probability": probability,
                                 "split": split, "meta": dict(meta or {})})

    def human_input(self, kind: str, prompt: Any, response: Any) -> None:
        step = self.current.index if self.current else (len(self.steps) - 1 if self.steps else None)
        self.human.append({"kind": kind, "prompt": prompt, "response": response,
                           "step_index": step, "seq": next(self._seq)})

    def model_call(self, record: CallRecord) -> None:
        """The session's :class:`Models` reports every call here (CallSink)."""
        record.seq = next(self._seq)
        if self.enabled and self.current is not None:
            self.current.calls.append(record)
        elif self.enabled:
            self.loose.append(("call", {"record": record}))

    def call_records(self) -> list[CallRecord]:
        return [c for s in self.steps for c in s.calls] + [
            r["record"] for k, r in self.loose if k == "call"]

    # ----------------------------------------------------------------- writing
    def flush(self, store: Store, *, status: str, output: dict[str, Any] | None = None,
              error: str | None = None) -> None:
        """Write everything not yet written, and the session's status, in one transaction."""
        self.session.status = str(status)
        self.session.output = output
        self.session.error = error
        if status in (orm.Status.COMPLETED, orm.Status.FAILED):
            self.session.finished_at = orm.utcnow()
        if not self.enabled:
            return
        with store.unit_of_work() as uow:
            db = uow.session
            db.merge(self.session)
            db.flush()
            for step_id in self._discard_ids:
                db.execute(delete(orm.Step).where(orm.Step.id == step_id))
            for name, info in self.agents.items():
                if not info.get("saved"):
                    db.add(orm.Agent(session_id=self.session.id, name=name,
                                     seed=info["seed"], roles=info["roles"]))
            for buf in self.steps:
                self._write_step(uow, buf)
            self._write_rows(uow, None, self.loose[self._saved_loose:])
            for item in self.human[self._saved_human:]:
                db.add(orm.HumanInput(session_id=self.session.id, **item))
            uow.commit()
        for info in self.agents.values():
            info["saved"] = True
        self._saved_human = len(self.human)
        self._saved_loose = len(self.loose)
        self._discard_ids.clear()

    def _write_step(self, uow: Any, buf: _StepBuffer) -> None:
        db = uow.session
        if buf.saved_id is None:
            row = orm.Step(session_id=self.session.id, index=buf.index, node=buf.node,
                           agent=buf.agent, checkpoint_id=buf.checkpoint_id,
                           duration_s=buf.duration_s)
            db.add(row)
            db.flush()
            buf.saved_id = row.id
        else:
            db.get(orm.Step, buf.saved_id).index = buf.index
        self._write_rows(uow, buf.saved_id, buf.rows[buf.saved_rows:])
        buf.saved_rows = len(buf.rows)
        for rec in buf.calls[buf.saved_calls:]:
            call = uow.calls.row(self.session.id, rec)
            call.step_id = buf.saved_id
            db.add(call)
        buf.saved_calls = len(buf.calls)

    def _write_rows(self, uow: Any, step_id: int | None,
                    rows: list[tuple[str, dict[str, Any]]]) -> None:
        sid = self.session.id
        for kind, row in rows:
            if kind == "belief":
                uow.session.add(orm.Belief(session_id=sid, step_id=step_id, **row))
            elif kind == "decision":
                uow.session.add(orm.Decision(session_id=sid, step_id=step_id, **row))
            elif kind == "metric":
                uow.session.add(orm.Metric(session_id=sid, step_index=_index_of(self, step_id),
                                           **row))
            elif kind == "prediction":
                uow.session.add(orm.Prediction(session_id=sid, **row))
            elif kind == "call":
                uow.session.add(uow.calls.row(sid, row["record"]))


def _index_of(rec: Recorder, step_id: int | None) -> int | None:
    for buf in rec.steps:
        if buf.saved_id == step_id and step_id is not None:
            return buf.index
    return None
