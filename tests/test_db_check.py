"""`tinmen db check` finds each kind of damage in a real store, and repairs only what it may.

Every test damages a store written by a real session the way a crash, a bad copy or a
hand edit would: through sqlite3 with foreign keys off, or by flipping bytes in the file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store, orm
from tinmen.storage.check import check_store, quick_check

from tinmen.cli import main


@pytest.fixture
def written(tmp_path) -> tuple[str, Path, str]:
    """(url, file, session id) of a closed store holding one real session and an artifact."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    store = Store.open(url)
    done = run_session(store, EXAMPLE, {"request": "How long do I boil an egg?"},
                       {"agent": resolve_spec("scripted:echo")}, pool=ModelPool())
    with store.unit_of_work() as uow:
        uow.artifacts.put(b"\x89PNG fake image bytes" * 20)
        uow.commit()
    store.close()
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    return url, path, done.session_id


def _sql(path: Path, statement: str, *params) -> list[tuple]:
    conn = sqlite3.connect(path)  # foreign keys off: as any other tool would write
    with conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


def _run(capsys, *args) -> tuple[int, str]:
    code = main(["db", "check", *args])
    return code, capsys.readouterr().out


def _kinds(url: str) -> set[str]:
    return {p.kind for p in check_store(url).problems}


def test_a_sound_store_is_clean(written, capsys):
    url, _, _ = written
    code, text = _run(capsys, "--db", url)
    assert code == 0 and "no problems found" in text


def test_a_missing_store_is_bad_input_and_is_not_created(tmp_path, capsys):
    path = tmp_path / "nothing.db"
    assert main(["db", "check", "--db", f"sqlite:///{path}"]) == 2
    assert not path.exists()


def _flip_tail_of(path: Path, index: str) -> None:
    """Invert the last bytes of an index's root page (its cell content): the file still
    opens, but the index no longer matches its table."""
    page_size = _sql(path, "PRAGMA page_size")[0][0]
    root = _sql(path, "SELECT rootpage FROM sqlite_master WHERE name = ?", index)[0][0]
    with open(path, "r+b") as f:
        f.seek(page_size * root - 8)
        data = f.read(4)
        f.seek(page_size * root - 8)
        f.write(bytes(b ^ 0xFF for b in data))


def test_flipped_bytes_fail_the_integrity_check(written, capsys):
    url, path, _ = written
    _flip_tail_of(path, "ix_belief_session_subject")
    code, text = _run(capsys, "--db", url)
    assert code == 1 and "damaged file" in text and "ix_belief_session_subject" in text


def test_a_broken_foreign_key_is_found_and_cleared_only_with_yes(written, capsys):
    url, path, sid = written
    step_id = _sql(path, "SELECT id FROM step WHERE session_id = ? LIMIT 1", sid)[0][0]
    _sql(path, "UPDATE belief SET session_id = 'ghost' WHERE step_id = ?", step_id)
    code, text = _run(capsys, "--db", url)
    assert code == 1 and "broken foreign keys" in text and "belief row" in text
    code, text = _run(capsys, "--db", url, "--repair")
    assert code == 1 and "pass --yes" in text
    assert _sql(path, "SELECT count(*) FROM belief WHERE session_id = 'ghost'")[0][0] > 0
    code, text = _run(capsys, "--db", url, "--repair", "--yes")
    assert "rows that referred to missing session rows deleted" in text
    assert _run(capsys, "--db", url)[0] == 0


def test_a_gap_in_step_indices_is_found(written, capsys):
    url, path, sid = written
    _sql(path, "UPDATE step SET \"index\" = \"index\" + 10 WHERE session_id = ? AND "
               "\"index\" = (SELECT max(\"index\") FROM step WHERE session_id = ?)", sid, sid)
    code, text = _run(capsys, "--db", url)
    assert code == 1 and "gaps in step numbering (1):" in text and sid in text


def test_a_belief_linked_to_another_sessions_step_is_an_orphan(written, capsys):
    url, path, sid = written
    _sql(path, "INSERT INTO session (id, graph, mode, status, thread_id, seed, inputs, "
               "bindings, created_at) VALUES ('other', 'example', 'live', 'completed', 't', 0, "
               "'{}', '{}', '2024-01-01 00:00:00')")
    _sql(path, "INSERT INTO step (session_id, \"index\", node, started_at, duration_s) VALUES "
               "('other', 0, 'n', '2024-01-01 00:00:00', 0)")
    other_step = _sql(path, "SELECT id FROM step WHERE session_id = 'other'")[0][0]
    belief = _sql(path, "SELECT id FROM belief WHERE session_id = ? LIMIT 1", sid)[0][0]
    _sql(path, "UPDATE belief SET step_id = ? WHERE id = ?", other_step, belief)
    assert _kinds(url) == {"orphan"}  # its foreign keys are all valid
    code, text = _run(capsys, "--db", url)
    assert code == 1 and f"belief {belief} (session {sid})" in text


def test_content_whose_text_does_not_match_its_sha_is_found(written, capsys):
    url, path, _ = written
    _sql(path, "UPDATE content SET text = text || ' (edited)' WHERE rowid = "
               "(SELECT min(rowid) FROM content)")
    code, text = _run(capsys, "--db", url)
    assert code == 1 and "content rows that do not match their sha256 (1):" in text


def test_an_artifact_whose_bytes_do_not_match_its_sha_is_found(written, capsys):
    url, path, _ = written
    _sql(path, "UPDATE artifact SET data = ?", b"other bytes")
    code, text = _run(capsys, "--db", url, "--json")
    report = json.loads(text)
    assert code == 1 and report["counts"] == {"artifact_hash": 1} and not report["ok"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_study_left_running_by_a_dead_process_is_marked_abandoned_by_repair(written,
                                                                               capsys):
    url, path, _ = written
    store = Store.open(url)
    with store.unit_of_work() as uow:
        study = uow.studies.add(orm.Study(name="grid", graph="example"))  # running, our pid
        uow.commit()
        study_id = study.id
    store.close()
    assert _run(capsys, "--db", url)[0] == 0  # our own process is alive: not stale
    _sql(path, "UPDATE study SET pid = ? WHERE id = ?", _dead_pid(), study_id)
    code, text = _run(capsys, "--db", url)
    assert code == 1 and f"study {study_id} is 'running' but its process" in text
    assert _sql(path, "SELECT status FROM study WHERE id = ?", study_id) == [("running",)]
    code, text = _run(capsys, "--db", url, "--repair")
    assert code == 0 and f"study {study_id} marked abandoned" in text
    assert _sql(path, "SELECT status FROM study WHERE id = ?", study_id) == [("abandoned",)]


def test_a_running_row_from_another_host_is_stale_only_when_old(written):
    url, path, _ = written
    _sql(path, "INSERT INTO study (name, graph, seed, config, status, created_at, pid, host) "
               "VALUES ('a', 'example', 0, '{}', 'running', datetime('now'), 1, 'elsewhere')")
    assert _kinds(url) == set()
    _sql(path, "UPDATE study SET created_at = datetime('now', '-3 days')")
    assert _kinds(url) == {"stale"}


def test_show_warns_on_a_store_that_fails_the_quick_check(written, capsys):
    url, path, sid = written
    page_size = _sql(path, "PRAGMA page_size")[0][0]
    root = _sql(path, "SELECT rootpage FROM sqlite_master WHERE name = "
                      "'ix_belief_session_subject'")[0][0]
    with open(path, "r+b") as f:  # a b-tree page header: structural damage
        f.seek(page_size * (root - 1) + 3)
        f.write(b"\xff\xff\xff\xff")
    store = Store.open(url)
    assert quick_check(store)
    store.close()
    main(["show", sid[:8], "--db", url])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "quick check" in line]
    assert len(warnings) == 1 and "tinmen db check" in warnings[0]
