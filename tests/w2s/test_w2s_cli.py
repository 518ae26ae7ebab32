"""``tinmen w2s run | report`` through ``tinmen.cli.main`` on a real SQLite store."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tinmen.cli import main

SMALL = ["--set", 'synthetic={"n_gt": 80, "n_w2s": 80, "n_test": 60, "n_help": 40}',
         "--set", 'train={"epochs": 2, "hidden": 16}', "--seeds", "2"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('cli')}/t.db"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["w2s", "run", "--task", "synthetic", "--ladder", "1,4,8", "--conflict",
                     "explicit", "--bootstrap", "--filter", "0.55", *SMALL, "--db", db,
                     "--json"])
    assert code == 0
    return db, json.loads(buf.getvalue())


def test_run_json_has_the_documented_shape(ran):
    _, data = ran
    assert {"pgr", "accuracy", "deception_score", "regions", "study_id"} <= set(data)
    assert {"weak", "strong_ceiling", "w2s", "w2s_conflict"} <= set(data["accuracy"])
    assert data["deception_score"] is not None
    regions = data["regions"]
    assert regions["weak_known"] + regions["weak_unknown"] == 60
    assert regions["strong_known"] + regions["strong_unknown"] == 60
    assert 0 <= regions["planted"]["precision"] <= 1
    assert sum(regions["tax_table"].values()) == 60
    # three pairs and one bootstrap chain, two data seeds each
    assert len(data["conditions"]) == 4 and all(c["seeds"] == 2 for c in data["conditions"])
    assert data["bootstrap"]["condition"] == "synthetic:1>4>8|xent|explicit|filter=0.55"


def test_report_writes_both_plots(ran, tmp_path, capsys):
    db, data = ran
    assert main(["w2s", "report", str(data["study_id"]), "--out", str(tmp_path),
                 "--db", db]) == 0
    for name in ("pgr", "deception"):
        png = tmp_path / f"w2s-study-{data['study_id']}-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "median PGR" in capsys.readouterr().out
    table = (tmp_path / f"w2s-study-{data['study_id']}.md").read_text()
    assert table.count("\n") == 2 + len(data["conditions"])  # header, rule, one per condition


def test_resuming_a_finished_study_runs_nothing(ran, capsys):
    db, data = ran
    assert main(["w2s", "run", "--ladder", "1,4,8", "--conflict", "explicit", "--bootstrap",
                 "--filter", "0.55", *SMALL, "--resume", str(data["study_id"]),
                 "--db", db]) == 0
    assert "0 sessions run, 8 already done" in capsys.readouterr().out


def test_user_errors_are_one_line(ran, capsys):
    db, _ = ran
    assert main(["w2s", "run", "--task", "vision", "--db", db]) == 2
    assert main(["w2s", "run", "--loss", "hinge", "--db", db]) == 2
    assert "--loss must be one of" in capsys.readouterr().err
    assert main(["w2s", "run", "--ladder", "1,9", "--db", db]) == 2
    assert main(["w2s", "run", "--ladder", "1,8", "--bootstrap", "--db", db]) == 2
    assert main(["w2s", "run", "--set", "nope=1", "--db", db]) == 2
    capsys.readouterr()
    assert main(["w2s", "run", "--set", 'train={"epochs": 0}', "--db", db]) == 2
    assert main(["w2s", "run", "--set", 'synthetic={"grups": 3}', "--db", db]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "grups" in err
    assert main(["w2s", "report", "999", "--db", db]) == 2
    capsys.readouterr()
    assert main(["w2s", "run", "--set", "feature_batch=x", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "feature_batch='x'" in err and len(err.strip().splitlines()) == 1, err
