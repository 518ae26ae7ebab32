"""Fault injection: SIGKILL studies mid-run and sessions paused at a prompt, then resume.

Children are forked from this process, which has already imported tinmen (100+ kills
cost a fork each, not a Python start); each opens its own store, the parent holds no open
connection while it forks. Kill times are drawn from a seeded generator. After every kill
``db check`` must find nothing, and after the final resume of each study every grid point
has exactly one completed session (0 lost, 0 duplicated), no claim or row is left without
its session (0 orphans), and every answer that was stored before a kill is the one the
session went on with (0 typed answers lost).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import traceback
from pathlib import Path

import cli_fuzz_inputs as gen
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

GRID = 'reps = 5\n[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = [4, 8, 16]\n'
POINTS = 15
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _child(fn, result: Path | None = None) -> int:
    """Fork; the child runs ``fn`` (its return value as JSON in ``result``) and exits
    without running the parent's cleanup."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        value = fn()
        if result is not None:
            result.write_text(json.dumps(value, default=str))
    except BaseException:  # noqa: BLE001 - reported to the parent through the file
        if result is not None:
            result.write_text(json.dumps({"error": traceback.format_exc()}))
        code = 3
    os._exit(code)


def _wait(pid: int, kill_after: float | None, timeout: float = 120.0) -> str:
    """'killed' when our SIGKILL ended it, 'exit N' otherwise."""
    deadline = time.monotonic() + (kill_after if kill_after is not None else timeout)
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return f"exit {os.waitstatus_to_exitcode(status)}"
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if kill_after is None:
        raise AssertionError(f"child {pid} did not finish in {timeout} s")
    code = os.waitstatus_to_exitcode(status)
    return "killed" if code == -signal.SIGKILL else f"exit {code}"


def _rows(url: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def _json(raw: object) -> object:
    """A JSON column as read with plain SQL: text on SQLite, already decoded on PostgreSQL."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _check_clean(url: str, when: str) -> None:
    from tinmen.storage.check import check_store

    report = check_store(url)
    assert report.ok, f"db check after {when}: {report.lines()}"


def _orphans(url: str) -> int:
    """Rows whose session is missing, and claims of grid points with no completed session
    after their study completed."""
    n = 0
    for table in ("step", "belief", "decision", "model_call", "human_input", "metric",
                  "agent"):
        n += _rows(url, f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "
                        "(SELECT 1 FROM session s WHERE s.id = t.session_id)")[0][0]
    n += _rows(url, "SELECT count(*) FROM trial_claim c JOIN study st ON st.id = c.study_id "
                    "WHERE st.status = 'completed' AND NOT EXISTS (SELECT 1 FROM session s "
                    "WHERE s.study_id = c.study_id AND s.condition_id = c.condition_id AND "
                    "s.rep = c.rep AND s.status = 'completed')")[0][0]
    return n


# --------------------------------------------------------------------------- studies
class Span:
    """Kill times drawn from [0, span): the span shrinks when children finish before the
    kill and grows when they are killed, so most draws land mid-run on a fast or a slow
    machine alike."""

    def __init__(self, rng: random.Random, start: float) -> None:
        self.rng, self.span = rng, start

    def draw(self) -> float:
        return self.rng.uniform(0.0, self.span)

    def saw(self, outcome: str) -> None:
        self.span = min(2.0, self.span * 1.1) if outcome == "killed" else \
            max(0.02, self.span * 0.7)


def _study_kills(url: str, folder: Path, rng: random.Random, target: int,
                 kills_per_study: int = 12) -> dict[str, int]:
    from tinmen.graphs.grid import Grid, plan_from_grid
    from tinmen.graphs.registry import load_agent
    from tinmen.graphs.study import create_or_resume, run_study
    from tinmen.models.pool import ModelPool
    from tinmen.storage import Store

    (folder / "grid.toml").write_text(GRID)
    plan = plan_from_grid(load_agent("example"), "example", Grid.from_file(
        folder / "grid.toml"), ["agent=scripted:echo"])
    counts = {"kills": 0, "lost": 0, "duplicated": 0, "orphans": 0, "finished_early": 0}

    def resume(sid: int, workers: int):
        def go():
            store = Store.open(url, migrate=False)
            out = run_study(store, plan, pool=ModelPool(), workers=workers, study_id=sid,
                            progress=False)
            return {"ran": out.ran, "failed": out.failed}
        return go

    span = Span(rng, 0.3)
    for _ in range(3 * target // kills_per_study + 3):
        if counts["kills"] >= target:
            break
        store = Store.open(url)
        sid, _, _ = create_or_resume(store, plan, None)
        store.close()
        for _ in range(kills_per_study):
            workers = rng.choice([1, 2, 3])
            outcome = _wait(_child(resume(sid, workers)), kill_after=span.draw())
            span.saw(outcome)
            if outcome == "killed":
                counts["kills"] += 1
            else:
                counts["finished_early"] += 1
            _check_clean(url, f"killing a resume of study {sid}")
            if outcome != "killed":
                break  # the study is complete: nothing left to kill
        result = folder / f"study{sid}.json"
        assert _wait(_child(resume(sid, 2), result), kill_after=None) == "exit 0", \
            result.read_text()
        _check_clean(url, f"the final resume of study {sid}")
        per_point = _rows(url, "SELECT condition_id, rep, count(*) FROM session WHERE "
                               "study_id = :sid AND status = 'completed' GROUP BY "
                               "condition_id, rep", sid=sid)
        counts["lost"] += POINTS - len(per_point)
        counts["duplicated"] += sum(n - 1 for *_, n in per_point)
        counts["duplicated"] += _rows(url, "SELECT count(*) FROM session WHERE study_id = :sid "
                                           "AND status != 'completed'", sid=sid)[0][0]
        assert _rows(url, "SELECT status FROM study WHERE id = :sid", sid=sid) == \
            [("completed",)]
    counts["orphans"] = _orphans(url)
    return counts


# --------------------------------------------------------------------------- sessions
def _session_kills(url: str, folder: Path, rng: random.Random, target: int
                   ) -> dict[str, int]:
    """Start a session of the asking agent and kill it (before, at or after the prompt),
    then resume it — sometimes killing the resume too — until it completes."""
    from tinmen.graphs.session import checkpointer_for, resume_session, run_session
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import resolve_spec
    from tinmen.storage import Store

    (folder / "asker.py").write_text(gen.ASKER)
    counts = {"kills": 0, "answers_lost": 0, "not_resumable": 0, "duplicated_answers": 0,
              "before_first_pause": 0, "answers_stored_before_a_kill": 0}
    echo = {"agent": resolve_spec("scripted:echo")}

    def start(n: int, typing_s: float):
        def go():
            store = Store.open(url, migrate=False)
            os.environ["FAULT_SESSION"] = str(n)

            def answer(payload):
                time.sleep(typing_s)  # a person typing; a kill may land here or after
                return f"colour-{n}"
            run_session(store, "asker.py:AGENT", {"n": n}, echo, pool=ModelPool(),
                        checkpointer=checkpointer_for(store), answer=answer)
        return go

    def resume(sid: str, n: int, attempt: int):
        def go():
            store = Store.open(url, migrate=False)
            done = resume_session(store, sid, lambda p: f"late-{n}-{attempt}",
                                  pool=ModelPool())
            return {"status": done.status, "colour": done.output.get("colour")}
        return go

    starting, resuming = Span(rng, 0.3), Span(rng, 0.2)
    for n in range(4 * target):
        if counts["kills"] >= target:
            break
        before = {r[0] for r in _rows(url, "SELECT id FROM session")}
        outcome = _wait(_child(start(n, rng.uniform(0.0, 0.05))), kill_after=starting.draw())
        starting.saw(outcome)
        counts["kills"] += outcome == "killed"
        _check_clean(url, f"killing session {n}")
        new = [r[0] for r in _rows(url, "SELECT id FROM session") if r[0] not in before]
        if not new:
            counts["before_first_pause"] += 1
            continue  # killed before its first pause was stored: nothing was written
        (sid,) = new
        for attempt in range(4):
            status = _rows(url, "SELECT status FROM session WHERE id = :s", s=sid)[0][0]
            if status == "completed":
                break
            assert status == "interrupted", status
            typed = [_json(r[0]) for r in _rows(
                url, "SELECT response FROM human_input WHERE session_id = :s", s=sid)]
            counts["answers_stored_before_a_kill"] += bool(typed) and attempt == 0
            kill = rng.random() < 0.7 and attempt < 3
            result = folder / f"resume-{n}-{attempt}.json"
            outcome = _wait(_child(resume(sid, n, attempt), result),
                            kill_after=resuming.draw() if kill else None)
            if kill:
                resuming.saw(outcome)
            counts["kills"] += outcome == "killed"
            _check_clean(url, f"resume {attempt} of session {n} ({outcome})")
            if outcome == "exit 0":
                got = json.loads(result.read_text())
                assert got["status"] == "completed", got
                if typed and got["colour"] != typed[0]:
                    counts["answers_lost"] += 1
            elif outcome != "killed":
                counts["not_resumable"] += 1
                pytest.fail(f"resume of session {n} failed: {result.read_text()[-2000:]}")
        answers = _rows(url, "SELECT count(*) FROM human_input WHERE session_id = :s", s=sid)
        counts["duplicated_answers"] += max(0, answers[0][0] - 1)
        assert _rows(url, "SELECT status FROM session WHERE id = :s", s=sid) == \
            [("completed",)]
    return counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkills_lose_nothing_duplicate_nothing_and_leave_no_orphans(
        backend, tmp_path, monkeypatch, request):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/faults.db"
    else:
        url = request.getfixturevalue("pg_db_url")
    study_kills, session_kills = 55, 45  # >= 100 SIGKILLs on each store
    monkeypatch.chdir(tmp_path)
    rng = random.Random(20240601)
    started = time.perf_counter()
    study = _study_kills(url, tmp_path, rng, study_kills)
    hitl = _session_kills(url, tmp_path, rng, session_kills)
    kills = study["kills"] + hitl["kills"]
    print(f"\nfault injection ({backend}): {kills} SIGKILLs ({study['kills']} of studies "
          f"mid-run, {hitl['kills']} of sessions at or around a prompt) in "
          f"{time.perf_counter() - started:.1f} s; lost {study['lost']}, duplicated "
          f"{study['duplicated']}, orphans {study['orphans']}, typed answers lost "
          f"{hitl['answers_lost']}, duplicated answers {hitl['duplicated_answers']}")
    assert study["lost"] == study["duplicated"] == study["orphans"] == 0, study
    assert hitl["answers_lost"] == hitl["duplicated_answers"] == 0, hitl
    assert study["kills"] >= study_kills and hitl["kills"] >= session_kills, (study, hitl)
