"""`tinmen t2i eval --resume STUDY` finishes an interrupted eval study and refuses a
different one."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from tinmen.cli import main

SCRIPTED = ["-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i"]


def _eval(capsys, db_url, *extra):
    code = main(["t2i", "eval", "--synthetic", "3", "--max-turns", "2", "--db", db_url,
                 *SCRIPTED, "--json", *extra])
    captured = capsys.readouterr()
    return code, captured


def _completed(db_url, study):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT condition_id, rep FROM session WHERE study_id = :s "
                                 "AND status = 'completed'"), {"s": study}).all()
    engine.dispose()
    return sorted(rows)


def _lose_one_session(db_url, study):
    """As if the process had died before the study's last session: that session, its
    claim and the study's completion are gone."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        sid, cond, rep = conn.execute(text(
            "SELECT id, condition_id, rep FROM session WHERE study_id = :s ORDER BY id "
            "LIMIT 1"), {"s": study}).one()
        conn.execute(text("DELETE FROM session WHERE id = :i"), {"i": sid})
        conn.execute(text("DELETE FROM trial_claim WHERE study_id = :s AND condition_id = :c "
                          "AND rep = :r"), {"s": study, "c": cond, "r": rep})
        conn.execute(text("UPDATE study SET status = 'running' WHERE id = :s"), {"s": study})
    engine.dispose()


def test_eval_resume_runs_only_the_missing_session_and_completes_the_study(capsys, db_url):
    code, captured = _eval(capsys, db_url)
    assert code == 0, captured.err
    study = json.loads(captured.out)["study_id"]
    full = _completed(db_url, study)
    assert len(full) == 3
    _lose_one_session(db_url, study)
    assert len(_completed(db_url, study)) == 2
    code, captured = _eval(capsys, db_url, "--resume", str(study))
    assert code == 0, captured.err
    assert json.loads(captured.out)["study_id"] == study  # no new study
    assert _completed(db_url, study) == full  # one session per grid point again
    assert main(["studies", "--db", db_url, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "completed"


def test_eval_resume_of_a_study_with_other_items_is_refused_in_one_line(capsys, db_url):
    code, captured = _eval(capsys, db_url)
    study = json.loads(captured.out)["study_id"]
    before = _completed(db_url, study)
    code = main(["t2i", "eval", "--synthetic", "5", "--max-turns", "2", "--db", db_url,
                 *SCRIPTED, "--resume", str(study)])
    err = capsys.readouterr().err
    assert code == 2 and len([x for x in err.splitlines() if x.strip()]) == 1, err
    assert _completed(db_url, study) == before


def test_eval_resume_needs_an_existing_store(capsys, tmp_path):
    code = main(["t2i", "eval", "--synthetic", "2", "--db", str(tmp_path / "none.db"),
                 *SCRIPTED, "--resume", "1"])
    assert code == 2 and not (tmp_path / "none.db").exists()
