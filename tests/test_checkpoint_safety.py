"""A checkpoint blob is data: loading a tampered one on resume never calls what it names.

The attack is built the way an attacker with write access to the store would: take the
real checkpoint of a paused session, put an ext value naming ``os.mkdir`` in its state (the
default LangGraph serializer would import ``os`` and call ``mkdir(marker)`` on load), write
it back into the ``checkpoints`` table, and resume."""

from __future__ import annotations

import io
import os
import pickle
import sqlite3
from typing import TypedDict

import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_SINGLE_ARG, JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from tinmen.graphs.checkpoints import StrictSerializer, memory_checkpointer
from tinmen.graphs.runtime import AgentDef, Context, recorded
from tinmen.graphs.session import checkpointer_for, resume_session, run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

from tinmen.cli import main
from tinmen.errors import StoreError

ECHO = {"agent": resolve_spec("scripted:echo")}


class AskState(TypedDict, total=False):
    draft: str
    answer: str


def ask(state: AskState, runtime) -> AskState:
    return {"answer": str(interrupt({"kind": "answer", "question": "colour?"}))}


def _build(checkpointer):
    g = StateGraph(AskState, context_schema=Context)
    g.add_node("ask", recorded("ask", ask))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=checkpointer)


ASK = AgentDef(name="ask-safety-test", build=_build, roles={"agent": "scripted:echo"},
               initial_state=lambda i, o: {}, output=lambda s: {"answer": s.get("answer")})


def _evil(marker) -> ormsgpack.Ext:
    """What LangGraph's permissive serializer turns into ``os.mkdir(marker)``."""
    return ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, ormsgpack.packb(["os", "mkdir", str(marker)]))


def _tamper(db_file, thread_id: str, marker) -> tuple[str, bytes]:
    """Rewrite the newest checkpoint of ``thread_id`` with the evil value in its state."""
    permissive = JsonPlusSerializer(allowed_msgpack_modules=True)
    conn = sqlite3.connect(db_file)
    with conn:
        kind, blob, cid = conn.execute(
            "SELECT type, checkpoint, checkpoint_id FROM checkpoints WHERE thread_id = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1", (thread_id,)).fetchone()
        checkpoint = permissive.loads_typed((kind, blob))
        checkpoint["channel_values"]["draft"] = _evil(marker)
        kind, blob = permissive.dumps_typed(checkpoint)
        conn.execute("UPDATE checkpoints SET type = ?, checkpoint = ? WHERE checkpoint_id = ?",
                     (kind, blob, cid))
    conn.close()
    return kind, blob


def _paused(store) -> str:
    result = run_session(store, ASK, {}, ECHO, pool=ModelPool(), answer=None,
                         checkpointer=checkpointer_for(store))
    assert result.status == "interrupted"
    return result.session_id


def test_the_tampered_blob_is_a_real_attack(store, tmp_path):
    """Control: LangGraph's default serializer does run the call this blob names."""
    marker = tmp_path / "ran-under-default-serializer"
    blob = _tamper(store.engine.url.database, _paused(store), marker)
    JsonPlusSerializer(allowed_msgpack_modules=True).loads_typed(blob)
    assert marker.exists()


def test_resume_of_a_tampered_checkpoint_refuses_and_runs_nothing(store, tmp_path):
    marker = tmp_path / "marker"
    sid = _paused(store)
    _tamper(store.engine.url.database, sid, marker)
    with pytest.raises(StoreError, match="os.mkdir") as refused:
        resume_session(store, sid, lambda p: "teal", pool=ModelPool())
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_a_pickled_checkpoint_is_refused(store, tmp_path):
    sid = _paused(store)
    conn = sqlite3.connect(store.engine.url.database)
    with conn:
        conn.execute("UPDATE checkpoints SET type = 'pickle', checkpoint = ? WHERE thread_id = ?",
                     (pickle.dumps({"v": 1}), sid))
    conn.close()
    with pytest.raises(StoreError, match="stored as 'pickle'"):
        resume_session(store, sid, lambda p: "teal", pool=ModelPool())


def test_nested_and_pending_write_values_are_checked_too(tmp_path):
    """An evil value inside an allowed container (a set) is found without building it."""
    marker = tmp_path / "nested"
    inner = ormsgpack.packb(["builtins", "set", [_evil(marker)]])
    blob = ormsgpack.packb({"a": [ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, inner)]})
    with pytest.raises(StoreError, match="os.mkdir"):
        StrictSerializer().loads_typed(("msgpack", blob))
    assert not marker.exists()


def test_ordinary_state_still_round_trips():
    serde = memory_checkpointer().serde
    value = {"belief": {"circle": {"colour": [0.5, 0.5]}}, "tags": {"a", "b"}, "n": 3}
    assert serde.loads_typed(serde.dumps_typed(value)) == value


def test_cli_resume_of_a_tampered_t2i_session_says_one_line(db_url, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no answer: the session pauses
    code = main(["t2i", "run", "--prompt", "a circle", "--max-turns", "2", "--db", db_url,
                 "-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i"])
    assert code == 0 and "tinmen resume" in capsys.readouterr().out
    marker = tmp_path / "cli-marker"
    db_file = db_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(db_file)
    sid = conn.execute("SELECT id FROM session WHERE status = 'interrupted'").fetchone()[0]
    conn.close()
    _tamper(db_file, sid, marker)
    code = main(["resume", sid, "--db", db_url, "--answer", "red"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "os.mkdir" in errors[0], errors
    assert not marker.exists() and not os.path.exists(str(marker))
