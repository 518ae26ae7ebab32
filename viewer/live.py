"""Live T2I sessions driven from the browser, on the pause/resume path.

A session starts with ``answer=None``: it runs to the agent's first question and is stored
as ``interrupted``. Each answer (or belief-graph edit, the same strings ``t2i run``
accepts) is one ``resume_session`` that feeds it to the pending question and pauses again
at the next. The store, not this process, holds a live session's state: a tab can be
closed and reopened, and a restarted server picks up any paused session where it stood.
Requests run in the server's thread pool, so tabs run sessions at once on the app's one
shared ModelPool; a per-session lock refuses a second answer while one is being acted on.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tinmen.models.spec import ModelSpec
from tinmen.storage import orm
from tinmen.viewer.stores import Stores

from tinmen.errors import ConfigError, TinmenError

SCRIPTED = re.compile(r"^scripted:[a-z0-9][a-z0-9_-]{0,60}$")


class Busy(TinmenError):
    """The session is acting on an earlier answer."""


class LiveStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=500)
    models: dict[str, str] = Field(default_factory=dict, description="role -> model spec "
                                   "(a registered name or scripted:NAME); empty unbinds")
    policy: str = Field("attribute", max_length=40)
    max_turns: int = Field(5, ge=0, le=20)
    images: Literal["end", "each"] = "each"
    seed: int = Field(0, ge=0, le=2**63 - 1)


class LiveAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=300)


def safe_spec(text: str) -> ModelSpec:
    """Specs a web page may name: registered names, or ``scripted:NAME``. Paths, spec files
    and import paths (which would read the disk or import code) stay on the CLI."""
    from tinmen.models.registry import named_specs, resolve_spec

    text = text.strip()
    if text not in named_specs() and not SCRIPTED.match(text):
        raise ConfigError(f"model '{text[:60]}': the viewer accepts registered names "
                          f"({', '.join(sorted(named_specs()))}) or scripted:NAME; run other "
                          "specs with the CLI")
    return resolve_spec(text)


def bindings_of(models: dict[str, str], roles: dict[str, str]) -> dict[str, ModelSpec]:
    unknown = sorted(set(models) - set(roles))
    if unknown:
        raise ConfigError(f"unknown role {', '.join(unknown)[:80]}; roles: "
                          f"{', '.join(sorted(roles))}")
    chosen = {r: d for r, d in roles.items() if d} | models
    return {role: safe_spec(spec) for role, spec in chosen.items() if spec.strip()}


class Live:
    """The app's live sessions: the shared pool and one lock per session."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._pool: Any = None
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def pool(self) -> Any:
        with self._guard:
            if self._pool is None:
                from tinmen.models.pool import ModelPool

                self._pool = ModelPool()  # never allows remote code: specs come from a page
            return self._pool

    def _lock(self, session_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def busy(self, session_id: str) -> bool:
        return self._lock(session_id).locked()

    def start(self, req: LiveStart) -> str:
        """Run a new session to its first question; returns its id."""
        from tinmen.graphs.session import checkpointer_for, run_session
        from tinmen.graphs.t2i import AGENT

        store = self.stores.write()
        result = run_session(store, AGENT, {"short": req.prompt},
                             bindings_of(req.models, AGENT.roles), pool=self.pool(),
                             seed=req.seed, answer=lambda payload: None,
                             checkpointer=checkpointer_for(store),
                             options={"policy": req.policy, "user": "human",
                                      "max_turns": req.max_turns, "images": req.images})
        return result.session_id

    def answer(self, session_id: str, text: str) -> str:
        """Give ``text`` to the pending question and run to the next one (or the end)."""
        from tinmen.graphs.session import resume_session

        lock = self._lock(session_id)
        if not lock.acquire(blocking=False):
            raise Busy(f"session {session_id[:12]} is still acting on the last answer")
        try:
            given = [text]
            result = resume_session(self.stores.write(), session_id,
                                    lambda payload: given.pop() if given else None,
                                    pool=self.pool())
            return str(result.status)
        finally:
            lock.release()


def pending(row_output: Any, status: str) -> dict[str, Any] | None:
    """The question a paused session waits on (its payload as the agent sent it)."""
    if status != orm.Status.INTERRUPTED.value or not isinstance(row_output, dict):
        return None
    question = (row_output.get("pending") or {}).get("question")
    return question if isinstance(question, dict) else None


def live_state(store: Any, live: Live, session_id: str) -> dict[str, Any]:
    """What the live page shows: status, the pending question, the newest belief graph
    (changes since the version before it highlighted), slots for the edit controls, the
    newest image, and the answers given so far."""
    from tinmen.viewer import beliefs
    from tinmen.viewer.detail import session_detail

    detail = session_detail(store, session_id)
    if detail["graph"] != "t2i":
        raise ConfigError(f"session {detail['id'][:12]} is a {detail['graph']} session; the "
                          "live page runs t2i sessions")
    found = beliefs.versions(detail)
    pic = beliefs.picture(detail, found[-1][0]) if found else None
    ask = pending(detail["output"], detail["status"]) or {}
    graph = found[-1][1] if found else ask.get("belief") or {}
    answers = [h["response"] for s in detail["steps"] for h in s["human_inputs"]] + [
        h["response"] for h in detail["unplaced"]["human_inputs"]]
    return {"id": detail["id"], "status": detail["status"], "busy": live.busy(detail["id"]),
            "question": ask.get("question"), "options": ask.get("options") or [],
            "error": ask.get("error"), "svg": pic["svg"] if pic else None,
            "changes": pic["lines"] if pic else [], "slots": _slots(graph),
            "image": detail["images"][-1]["sha256"] if detail["images"] else None,
            "answers": answers, "turn": len(answers),
            "final_prompt": (detail["output"] or {}).get("final_prompt")}


def _slots(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Entities and their attributes with the most likely value (for set / pin / drop)."""
    out = []
    for e in graph.get("entities") or []:
        attrs = []
        for a in e.get("attributes") or []:
            cands = a.get("candidates") or {}
            best = max(cands, key=lambda v: cands[v]) if cands else ""
            attrs.append({"name": a["name"], "best": best, "candidates": sorted(cands),
                          "pinned": bool(a.get("pinned"))})
        out.append({"name": e["name"], "attributes": attrs})
    return out
