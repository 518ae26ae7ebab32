"""Every answer a person typed survives the process dying: it is stored before the agent
acts on it, and a resume in a new process continues from it without asking again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tinmen.graphs.session import resume_session
from tinmen.models.pool import ModelPool
from tinmen.storage import Store

AGENT_FILE = textwrap.dedent('''
    import os
    from typing import TypedDict
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt
    from tinmen import AgentDef, Context, recorded

    class State(TypedDict, total=False):
        colour: str
        done: str

    def ask(state, runtime):
        ctx = runtime.context
        ctx.models.generate("agent", "which colour?")
        colour = interrupt({"kind": "answer", "question": "which colour?"})
        ctx.recorder.belief("user.colour", colour, source="user_edit")
        return {"colour": colour}

    def finish(state, runtime):
        if os.environ.get("DIE_AFTER_ANSWER"):  # the process dies right after the answer
            os._exit(137)
        runtime.context.models.generate("agent", "confirm " + state["colour"])
        return {"done": "yes"}

    def build(checkpointer):
        g = StateGraph(State, context_schema=Context)
        g.add_node("ask", recorded("ask", ask))
        g.add_node("finish", recorded("finish", finish))
        g.add_edge(START, "ask")
        g.add_edge("ask", "finish")
        g.add_edge("finish", END)
        return g.compile(checkpointer=checkpointer)

    AGENT = AgentDef(name="asker", build=build, roles={"agent": "scripted:echo"},
                     initial_state=lambda i, o: {}, output=lambda s: dict(s))
''')

DRIVER = textwrap.dedent('''
    import sys
    from tinmen import ModelPool, Store, checkpointer_for, resolve_spec, run_session
    store = Store.open(sys.argv[1])
    print("started", flush=True)
    run_session(store, "asker.py:AGENT", {}, {"agent": resolve_spec("scripted:echo")},
                pool=ModelPool(), checkpointer=checkpointer_for(store),
                answer=lambda payload: sys.stdin.readline().strip() or None)
''')


def _start(tmp_path, url, env=None):
    (tmp_path / "asker.py").write_text(AGENT_FILE)
    (tmp_path / "driver.py").write_text(DRIVER)
    return subprocess.Popen([sys.executable, "driver.py", url], cwd=tmp_path, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def _only_session(store):
    with store.unit_of_work() as uow:
        (row,) = uow.sessions.list(limit=5)
        return row.id, row.status, [h.response for h in uow.records.human_inputs(row.id)]


def test_a_kill_at_the_prompt_keeps_the_session_resumable(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/hitl.db"
    proc = _start(tmp_path, url)
    assert proc.stdout.readline().strip() == "started"
    store = Store.open(url)
    for _ in range(200):  # wait until the pause is stored, then kill at the prompt
        try:
            if _only_session(store)[1] == "interrupted":
                break
        except ValueError:
            pass
        proc.poll()
        __import__("time").sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sid, status, answers = _only_session(store)
    assert status == "interrupted" and answers == []
    monkeypatch.chdir(tmp_path)
    done = resume_session(store, sid, lambda payload: "teal", pool=ModelPool())
    assert done.status == "completed" and done.output["colour"] == "teal"


def test_an_answer_typed_before_a_crash_is_used_on_resume_without_asking(tmp_path,
                                                                         monkeypatch):
    url = f"sqlite:///{tmp_path}/hitl.db"
    proc = _start(tmp_path, url, env={"DIE_AFTER_ANSWER": "1"})
    proc.communicate("teal\n", timeout=120)
    assert proc.returncode == 137
    store = Store.open(url)
    sid, status, answers = _only_session(store)
    assert status == "interrupted" and answers == ["teal"]  # stored before the agent acted
    monkeypatch.chdir(tmp_path)

    def must_not_ask(payload):
        raise AssertionError("the stored answer should have been used")
    done = resume_session(store, sid, must_not_ask, pool=ModelPool())
    assert done.status == "completed" and done.output["colour"] == "teal"
    with store.unit_of_work() as uow:
        assert [h.response for h in uow.records.human_inputs(sid)] == ["teal"]
    from tinmen.graphs.replay import replay_session

    assert replay_session(store, sid).identical


def _resume_in_child(tmp_path, url, sid, answer, env):
    """Resume ``sid`` in a fresh process that may die right after the answer."""
    script = textwrap.dedent(f'''
        import sys
        from tinmen import ModelPool, Store
        from tinmen.graphs.session import resume_session
        store = Store.open({url!r})
        print(resume_session(store, {sid!r}, lambda p: {answer!r}, pool=ModelPool()).status)
    ''')
    (tmp_path / "resumer.py").write_text(script)
    return subprocess.run([sys.executable, "resumer.py"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


def test_a_resume_killed_after_the_stored_answer_can_itself_be_resumed(tmp_path,
                                                                        monkeypatch):
    """A crash after the answer, then a crash of the resume at the same point: the third
    run re-runs the node that took the answer (it is recorded once) and replays exactly."""
    url = f"sqlite:///{tmp_path}/hitl.db"
    proc = _start(tmp_path, url, env={"DIE_AFTER_ANSWER": "1"})
    proc.communicate("teal\n", timeout=120)
    store = Store.open(url)
    sid = _only_session(store)[0]
    again = _resume_in_child(tmp_path, url, sid, "unused", {"DIE_AFTER_ANSWER": "1"})
    assert again.returncode == 137, again.stderr
    monkeypatch.chdir(tmp_path)
    done = resume_session(store, sid, lambda p: "unused", pool=ModelPool())
    assert done.status == "completed" and done.output["colour"] == "teal"
    from tinmen.graphs.replay import replay_session
    from tinmen.storage.check import check_store

    assert replay_session(store, sid).identical
    assert check_store(url).ok


def test_an_answer_typed_at_a_resume_survives_a_crash_of_that_resume(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/hitl.db"
    proc = _start(tmp_path, url)
    proc.communicate("\n", timeout=120)  # no answer: the session stays paused
    store = Store.open(url)
    sid, status, _ = _only_session(store)
    assert status == "interrupted"
    died = _resume_in_child(tmp_path, url, sid, "ochre", {"DIE_AFTER_ANSWER": "1"})
    assert died.returncode == 137, died.stderr
    assert _only_session(store)[2] == ["ochre"]  # stored before the agent acted on it
    monkeypatch.chdir(tmp_path)
    done = resume_session(store, sid, lambda p: "not asked", pool=ModelPool())
    assert done.status == "completed" and done.output["colour"] == "ochre"
    from tinmen.graphs.replay import replay_session

    assert replay_session(store, sid).identical
