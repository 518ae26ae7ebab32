"""``tinmen judge run | report | rank`` through ``tinmen.cli.main`` on a real SQLite store."""

from __future__ import annotations

import json

import pytest

from tinmen.cli import main

SMALL = ["--iterations", "1", "--prompts", "2", "--candidates", "2", "--judge-samples", "1",
         "--set", "sft_steps=10", "--set", "eval_items=3", "--set", "judgeset_items=2",
         "--set", "audit_items=3", "--set", "max_new_tokens=5"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    import contextlib
    import io

    db = f"sqlite:///{tmp_path_factory.mktemp('cli')}/t.db"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["judge", "run", *SMALL, "--db", db, "--json"])
    assert code == 0
    return db, json.loads(buf.getvalue())


def test_run_json_has_the_documented_shape(ran):
    _, data = ran
    assert set(data) == {"iterations", "study_id"}
    assert [row["t"] for row in data["iterations"]] == [0, 1]
    for row in data["iterations"]:
        assert set(row) == {"t", "win_rate_vs_prev", "judge_oracle_accuracy", "spearman",
                            "inconsistency_rate", "pairs_kept"}
    assert data["iterations"][0]["win_rate_vs_prev"] is None  # nothing before the seed model
    assert 0 <= data["iterations"][1]["win_rate_vs_prev"] <= 1


def test_rank_prints_posterior_ranks_with_intervals(ran, capsys):
    pytest.importorskip("pyro")
    db, data = ran
    assert main(["judge", "rank", "--study", str(data["study_id"]), "--steps", "30",
                 "--db", db, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked["judges"] == ["audit:auditor", "audit:sft_judge"]
    assert len(ranked["candidates"]) == 2  # M_0 and M_1
    for c in ranked["candidates"]:
        assert 1 <= c["lo"] <= c["hi"] <= 2 and 1 <= c["mean_rank"] <= 2
        assert c["true_rank"] in (1, 2)
    assert set(ranked["coverage"]) == {"bayes", "bootstrap"}


def test_report_writes_the_curves_as_png(ran, tmp_path, capsys):
    db, data = ran
    assert main(["judge", "report", str(data["study_id"]), "--out", str(tmp_path),
                 "--db", db]) == 0
    png = tmp_path / f"judge-study-{data['study_id']}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / f"judge-study-{data['study_id']}.md").read_text()
    assert table.count("\n") == 2 + len(data["iterations"])  # t = 0 and t = 1


def test_user_errors_are_one_line(ran, capsys):
    db, _ = ran
    assert main(["judge", "run", "--variant", "rlhf", "--db", db]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["judge", "run", "--set", "nope=1", "--db", db]) == 2
    capsys.readouterr()
    for bad, says in (("selection=best", "selection='best'"), ("nll_weight=-1", "nll_weight=-1"),
                      ("ift_examples=lots", "ift_examples='lots'"), ("prompts=0", "prompts=0")):
        assert main(["judge", "run", "--set", bad, "--db", db]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert main(["judge", "rank", "--study", "999", "--db", db]) == 2


def test_bad_judge_prompt_is_one_line_and_writes_nothing(tmp_path, capsys):
    db = tmp_path / "never.db"
    assert main(["judge", "run", "--judge-prompt", "essay", "--db", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert "judge_prompt='essay'" in err and len(err.strip().splitlines()) == 1, err
    assert main(["judge", "run", "--set", "verdict_tokens=0", "--db", f"sqlite:///{db}"]) == 2
    capsys.readouterr()
    assert not db.exists()


def test_quick_sizes_apply_under_explicit_flags_and_sets():
    from tinmen.graphs.judge import QUICK, check_options

    from tinmen.cli_judge import _options

    quick = check_options(_options({"iterations": None, "prompts": None}, None, quick=True))
    assert {k: quick[k] for k in QUICK} == QUICK and quick["sft_steps"] < 2000
    mine = _options({"iterations": 2, "judge_prompt": "paper"}, ["sft_steps=50"], quick=True)
    assert mine["iterations"] == 2 and mine["sft_steps"] == 50 and mine["prompts"] == 16
    assert mine["judge_prompt"] == "paper"
    assert _options({"iterations": None}, None) == {}  # without --quick: the defaults
