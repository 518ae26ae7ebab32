"""User-facing behaviour of the T2I commands: refusals before anything is written, progress
on stderr, replay of a paused session, resume after an edit, and the eval report."""

from __future__ import annotations

import io
import json

import pytest
from cli_errors import one_line_error
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import resume_session
from tinmen.models.pool import ModelPool
from tinmen.storage import Store

from tinmen.cli import main

SCRIPTED = ["-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i"]
SCENE = {"entities": [{"name": "circle", "attributes": {"color": "red"}}]}


def _studies(capsys, db_url):
    assert main(["studies", "--db", db_url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _sessions(capsys, db_url):
    assert main(["sessions", "--db", db_url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_with_the_oracle_refuses_items_without_a_scene_naming_them(capsys, db_url,
                                                                         tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"id": "no-scene-1", "short": "a circle", "long": "a red circle"},
        {"id": "has-scene", "short": "a circle", "long": "a red circle", "scene": SCENE},
        {"id": "no-scene-2", "short": "a star", "long": "a blue star"}]))
    line = one_line_error(capsys, ["t2i", "eval", "--items", str(path), "--db", db_url,
                                    *SCRIPTED])
    assert "no-scene-1" in line and "no-scene-2" in line and "has-scene" not in line
    assert _studies(capsys, db_url) == []  # refused before the study was written


def test_an_oracle_session_without_a_scene_is_one_line_and_writes_nothing(capsys, db_url):
    line = one_line_error(capsys, ["run", "t2i", "--input", '{"short": "a circle"}',
                                    "--db", db_url, *SCRIPTED])
    assert "user='oracle'" in line and "scene" in line
    assert _sessions(capsys, db_url) == []


def test_bad_eval_options_are_named_by_the_options_model(capsys, db_url):
    base = ["t2i", "eval", "--synthetic", "2", "--db", db_url, *SCRIPTED]
    assert "t2i option images='sometimes'" in one_line_error(
        capsys, base + ["--images", "sometimes"])
    assert "t2i option policy='best'" in one_line_error(capsys, base + ["--policy", "best"])
    assert "t2i option max_turns=500" in one_line_error(capsys, base + ["--max-turns", "500"])
    assert "simulated user" in one_line_error(capsys, base + ["--user", "human"])
    assert _studies(capsys, db_url) == []


def test_eval_json_still_shows_the_study_progress_on_stderr(capsys, db_url):
    code = main(["t2i", "eval", "--synthetic", "2", "--max-turns", "1", "--db", db_url,
                 *SCRIPTED, "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["items"] == 2  # stdout is the JSON only
    assert "(t2i)" in captured.err and "2/2" in captured.err


def test_t2i_run_streams_each_step_on_stderr(capsys, monkeypatch, db_url):
    monkeypatch.setattr("sys.stdin", io.StringIO("red\n"))
    assert main(["t2i", "run", "--prompt", "a circle", "--max-turns", "1", "--db", db_url,
                 *SCRIPTED]) == 0
    captured = capsys.readouterr()
    assert "step 0 parse" in captured.err and "step 0 parse" not in captured.out


def test_a_session_paused_after_an_edit_replays_identically(capsys, monkeypatch, db_url):
    monkeypatch.setattr("sys.stdin", io.StringIO("set circle.size=large\nred\n"))
    assert main(["t2i", "run", "--prompt", "a circle", "--max-turns", "3", "--db", db_url,
                 *SCRIPTED]) == 0
    assert "tinmen resume" in capsys.readouterr().out
    sid = _sessions(capsys, db_url)[0]["id"]
    report = replay_session(Store.open(db_url), sid)
    assert report.identical and report.divergence is None, report.to_json()


def test_resume_after_adding_an_entity_at_the_pause_runs_to_the_end(capsys, monkeypatch,
                                                                     db_url):
    """'add star' at the first question, then a pause; answers about the star put it in the
    prompt, and the re-parse used to fail re-applying the add ("already in the graph")."""
    monkeypatch.setattr("sys.stdin", io.StringIO("add star\n"))
    assert main(["t2i", "run", "--prompt", "a circle", "--max-turns", "3", "--db", db_url,
                 *SCRIPTED]) == 0
    assert "tinmen resume" in capsys.readouterr().out
    sid = _sessions(capsys, db_url)[0]["id"]
    answers = ["red", "red", "left", "small", "white", "blue"]
    store = Store.open(db_url)  # a fresh store and pool: as another process would
    result = resume_session(store, sid, lambda payload: answers.pop(0) if answers else None,
                            pool=ModelPool())
    assert result.status == "completed", result
    assert "star" in result.output["final_prompt"]
    assert replay_session(store, sid).identical


def test_report_of_an_eval_study_plots_coverage_by_policy(capsys, db_url, tmp_path):
    code = main(["t2i", "eval", "--synthetic", "3", "--max-turns", "2", "--policy",
                 "attribute", "--policy", "random-binary", "--db", db_url, *SCRIPTED,
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and set(summary["by_policy"]) == {"attribute", "random-binary"}
    assert main(["report", str(summary["study_id"]), "--db", db_url, "--out",
                 str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["study"] == summary["study_id"]
    assert [open(p, "rb").read(4) for p in rep["plots"]] == [b"\x89PNG"]
    table = open(rep["table"]).read()
    assert table.count("| attribute |") == 3 and table.count("| random-binary |") == 3
    first = rep["by_policy"]["attribute"]["turns"][0]
    low, high = first["fact_coverage_ci"]
    assert low <= first["fact_coverage"] <= high
    assert rep["by_policy"] == summary["by_policy"]


@pytest.mark.slow
def test_demo_streams_its_steps_on_stderr(capsys, db_url):
    assert main(["demo", "--db", db_url, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["session_id"] and "step 0 parse" in captured.err
