"""Every script in examples/ runs as a newcomer would run it: copied out of the repository
into an empty directory, with the store named by --db (or TINMEN_DB)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


@pytest.fixture
def copied(tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    for name in SCRIPTS:
        shutil.copy(EXAMPLES / name, work / name)
    return work


def run(work: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=work, text=True, capture_output=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_there_are_at_least_four_examples_and_each_is_tested():
    tested = {"minimal_agent.py", "shared_model.py", "study_analysis.py",
              "human_in_the_loop.py"}
    assert len(SCRIPTS) >= 4 and set(SCRIPTS) <= tested, set(SCRIPTS) - tested


def test_minimal_agent_runs_replays_and_forks(copied):
    out = run(copied, "minimal_agent.py", "--db", "runs.db")
    assert "replay identical: True" in out and "fork:" in out
    assert (copied / "runs.db").is_file()


def test_shared_model_loads_one_copy_for_two_roles(copied):
    out = run(copied, "shared_model.py", env={"TINMEN_DB": "sqlite:///shared.db"})
    assert "models loaded: 1" in out and "['critic', 'proposer']" in out
    assert (copied / "shared.db").is_file()


def test_study_analysis_runs_a_grid_and_plots(copied):
    out = run(copied, "study_analysis.py", "--db", "study.db", "--out", "plots")
    assert "27 sessions" in out
    assert list((copied / "plots").glob("study-*-asked.png"))


def test_human_in_the_loop_pauses_then_resumes_in_a_second_process(copied):
    from tinmen.storage import Store

    first = run(copied, "human_in_the_loop.py", "start", "--db", "hitl.db").split()
    sid, status = first[0], first[1]
    assert status == "interrupted"
    second = run(copied, "human_in_the_loop.py", "resume", sid, "teal", "--db", "hitl.db")
    assert f"{sid} completed" in second and "teal" in second
    replay = run(copied, "-m", "tinmen.cli", "replay", sid, "--db", "hitl.db", "--json")
    assert json.loads(replay)["identical"] is True
    with Store.open(f"sqlite:///{copied}/hitl.db").unit_of_work() as uow:
        assert [h.response for h in uow.records.human_inputs(sid)] == ["teal"]
