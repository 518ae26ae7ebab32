"""A researcher's own agent, in a file outside the package, through the generic CLI: run,
list, show, replay, fork, a study over a grid, its report and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tinmen.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ECHO = ["-m", "agent=scripted:echo"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project directory holding a copy of the minimal agent."""
    shutil.copy(EXAMPLES / "minimal_agent.py", tmp_path / "my_agent.py")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(capsys, *args, code=0):
    got = main(list(args))
    captured = capsys.readouterr()
    assert got == code, captured.err
    return captured


def cli_json(capsys, *args):
    return json.loads(cli(capsys, *args, "--json").out)


def test_a_file_agent_runs_lists_shows_replays_and_forks(capsys, project, db_url):
    made = cli_json(capsys, "run", "my_agent.py:AGENT", "--input", '{"request": "I love it"}',
                    *ECHO, "--db", db_url)
    sid = made["session_id"]
    assert made["status"] == "completed" and made["output"]["action"] == "ask"
    listed = cli_json(capsys, "sessions", "--db", db_url, "--agent", "agent")
    assert [s["id"] for s in listed] == [sid] and listed[0]["graph"] == "mood-replier"
    shown = cli_json(capsys, "show", sid[:10], "--db", db_url)
    assert [s["node"] for s in shown["steps"]] == ["read_mood", "decide", "write"]
    assert cli_json(capsys, "replay", sid, "--db", db_url)["identical"] is True
    fork = cli_json(capsys, "fork", sid, "--at-step", "1", "--set", "ask_above=1.5",
                    "--db", db_url)
    assert any("answer_or_ask" in d for d in fork["differences"])


def test_the_session_remembers_how_to_import_its_agent(capsys, project, db_url):
    sid = cli_json(capsys, "run", "my_agent.py:AGENT", "--input", '{"request": "ok"}', *ECHO,
                   "--db", db_url)["session_id"]
    (project / "elsewhere").mkdir()
    main(["sessions", "--db", db_url])
    capsys.readouterr()
    import os

    os.chdir(project / "elsewhere")
    err = cli(capsys, "replay", sid, "--db", db_url, code=2).err
    assert "my_agent.py:AGENT" in err and err.strip().count("\n") == 0


def test_bad_options_and_inputs_of_a_file_agent_are_one_line_and_write_nothing(
        capsys, project, db_url):
    for args, needle in ((["--set", "ask_above=5"], "ask_above"),
                         (["--set", "nope=1"], "unknown mood-replier option 'nope'"),
                         (["--input", '{"request": ""}'], "request"),
                         (["--input", "[1, 2]"], "JSON object"),
                         (["-m", "critic=scripted:echo"], "unknown role 'critic'")):
        base = ["--input", '{"request": "x"}'] if args[0] != "--input" else []
        err = cli(capsys, "run", "my_agent.py:AGENT", *base, *args, "--db", db_url,
                  code=2).err
        assert needle in err and "Traceback" not in err, err
    assert "no store at" in cli(capsys, "sessions", "--db", db_url, code=2).err  # none made


def test_a_study_over_a_file_agent_runs_reports_and_exports(capsys, project, db_url):
    (project / "grid.toml").write_text(
        'reps = 2\n[inputs]\nrequest = "I love it"\n[axes]\nask_above = [0.5, 1.5]\n')
    ran = cli_json(capsys, "study", "run", "my_agent.py:AGENT", "--grid", "grid.toml", *ECHO,
                   "--db", db_url)
    assert ran["ran"] == 4 and ran["failed"] == []
    again = cli_json(capsys, "study", "run", "my_agent.py:AGENT", "--grid", "grid.toml", *ECHO,
                     "--resume", str(ran["study_id"]), "--db", db_url)
    assert again["ran"] == 0 and again["skipped"] == 4
    studies = cli_json(capsys, "studies", "--db", db_url)
    assert studies[0]["sessions"] == 4 and studies[0]["conditions"] == 2
    decisions = pd.concat([
        pd.DataFrame(cli_json(capsys, "show", s["id"], "--db", db_url)["steps"][1]["decisions"])
        for s in cli_json(capsys, "sessions", "--db", db_url)])
    assert sorted(decisions["chosen"]) == ["answer", "answer", "ask", "ask"]
    report = cli_json(capsys, "report", str(ran["study_id"]), "--out", "rep", "--db", db_url)
    assert Path(report["table"]).is_file()
    out = cli_json(capsys, "export", str(ran["study_id"]), "exp", "--format", "csv",
                   "--db", db_url)
    assert len(pd.read_csv(out["sessions"])) == 4
    assert set(pd.read_csv(out["decisions"])["condition"]) == {"ask_above=0.5",
                                                                "ask_above=1.5"}


def test_a_grid_naming_a_role_the_agent_lacks_is_refused_before_any_write(
        capsys, project, db_url):
    (project / "grid.toml").write_text('[inputs]\nrequest = "x"\n[models]\ncritic = ["a"]\n')
    err = cli(capsys, "study", "run", "my_agent.py:AGENT", "--grid", "grid.toml",
              "--db", db_url, code=2).err
    assert "role 'critic'" in err
    assert "no store at" in cli(capsys, "studies", "--db", db_url, code=2).err  # none made


def test_fork_with_a_role_the_graph_lacks_is_an_error_naming_its_roles(capsys, db_url):
    sid = cli_json(capsys, "run", "example", "--input", '{"request": "egg"}', *ECHO,
                   "--db", db_url)["session_id"]
    err = cli(capsys, "fork", sid, "--at-step", "1", "-m", "critic=scripted:echo",
              "--db", db_url, code=2).err
    assert "has no role critic; its roles: agent" in err


def test_install_hints_keep_their_brackets(capsys):
    from tinmen.models.registry import missing_dependency

    assert "pip install 'tinmen[ray]'" in str(missing_dependency("ray", "--executor ray"))
    err = cli(capsys, "study", "run", "example", "--grid", "missing[ray].toml", code=2).err
    assert "missing[ray].toml" in err


def test_usage_errors_are_one_line_with_exit_2(capsys):
    for args in (["run"], ["sessions", "--limit", "x"], ["nosuch"], ["fork", "abc"]):
        err = cli(capsys, *args, code=2).err
        assert "Traceback" not in err and err.strip().count("\n") == 0, err


def test_agents_lists_every_built_in_agent_with_its_options(capsys):
    rows = {r["name"]: r for r in cli_json(capsys, "agents")}
    assert {"example", "t2i", "shopper", "shopper-market", "w2s", "judge"} <= set(rows)
    assert "max_turns" in rows["t2i"]["options"] and rows["t2i"]["report"]
