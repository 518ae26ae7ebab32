"""The CLI: read commands, --json, replay, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import sqlite3

from cli_errors import one_line_error

from tinmen.cli import main


def current_head() -> str:
    from alembic.script import ScriptDirectory
    from tinmen.storage.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def run_json(capsys, args):
    code = main(args + ["--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("sessions", "show", "replay", "fork", "db", "models", "example"):
        assert command in text


def test_example_show_replay_roundtrip(capsys, db_url):
    made = run_json(capsys, ["example", "--db", db_url, "-m", "agent=scripted:echo"])
    sid = made["session_id"]
    assert made["stored"]["model_calls"] == 2 and made["stored"]["beliefs"] == 2
    listed = run_json(capsys, ["sessions", "--db", db_url])
    assert [s["id"] for s in listed] == [sid]
    shown = run_json(capsys, ["show", sid[:8], "--db", db_url])
    assert [s["node"] for s in shown["steps"]] == ["classify", "decide", "write"]
    assert shown["steps"][0]["beliefs"][0]["subject"] == "request.topic"
    report = run_json(capsys, ["replay", sid, "--db", db_url])
    assert report["identical"] is True and report["calls_served"] == 2
    assert main(["show", sid, "--db", db_url]) == 0
    assert "decision answer_or_clarify" in capsys.readouterr().out


def test_user_errors_are_one_line(capsys, db_url, tmp_path):
    one_line_error(capsys, ["example", "--db", db_url, "-m", "agent=gpt-17"], "unknown model")
    one_line_error(capsys, ["example", "--db", db_url, "-m", "critic=smollm2"], "unknown role")
    one_line_error(capsys, ["sessions", "--db", "nosuch://x"], "bad database URL")
    one_line_error(capsys, ["show", "nope", "--db", db_url], "no store at")  # none made
    assert main(["db", "upgrade", "--db", db_url]) == 0
    capsys.readouterr()
    one_line_error(capsys, ["show", "nope", "--db", db_url], "no session 'nope'")
    bad = tmp_path / "spec.json"
    bad.write_text("{not json")
    one_line_error(capsys, ["example", "--db", db_url, "-m", f"agent={bad}"],
                   "cannot read model spec")


def test_locked_store_is_one_line(capsys, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/busy.db"
    assert main(["db", "upgrade", "--db", url]) == 0
    capsys.readouterr()
    monkeypatch.setenv("TINMEN_BUSY_TIMEOUT_MS", "100")
    holder = sqlite3.connect(tmp_path / "busy.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        one_line_error(capsys, ["example", "--db", url, "-m", "agent=scripted:echo"],
                       "locked by another process")
    finally:
        holder.rollback()
        holder.close()
    listed = run_json(capsys, ["sessions", "--db", url])
    assert listed == []  # nothing half-written


def test_db_status_and_models_list(capsys, db_url):
    assert main(["db", "upgrade", "--db", db_url]) == 0  # status reads an existing store
    capsys.readouterr()
    status = run_json(capsys, ["db", "status", "--db", db_url])
    assert status["revision"] == current_head() and "model_call" in status["rows"]
    listed = run_json(capsys, ["models", "list", "--load", "scripted:echo"])
    names = {m["name"]: m for m in listed["specs"]}
    assert "smollm2" in names and names["scripted:echo"]["bytes"] > 0
    assert "scripted" in listed["backends"]
