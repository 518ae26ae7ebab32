"""`tinmen shopper study` and `tinmen shopper report` through tinmen.cli.main."""

from __future__ import annotations

import json

from cli_errors import one_line_error
from tinmen.storage import Store

from tinmen.cli import main

CELL_KEYS = {"scenario", "condition", "model", "temperature", "n", "parsed", "override_rate",
             "ci_low", "ci_high"}


def _json(capsys, args):
    code = main(args + ["--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_study_json_then_report_writes_table_and_png(capsys, db_url, tmp_path):
    data = _json(capsys, ["shopper", "study", "--db", db_url, "--scenario", "car",
                          "-m", "agent=scripted:info-sensitive", "--temperature", "0.2",
                          "--temperature", "0.6", "--reps", "2"])
    assert set(data) == {"cells", "study_id"}
    assert len(data["cells"]) == 8 and all(CELL_KEYS <= set(c) for c in data["cells"])
    rates = {(c["condition"], c["temperature"]): c["override_rate"] for c in data["cells"]}
    assert rates[("both", 0.6)] == 1.0 and rates[("neither", 0.2)] == 0.0
    cell = data["cells"][0]
    assert cell["n"] == 2 and 0 <= cell["ci_low"] <= cell["override_rate"] <= cell["ci_high"]
    out = tmp_path / "report"
    rep = _json(capsys, ["shopper", "report", str(data["study_id"]), "--db", db_url,
                         "--out", str(out), "--sql"])
    png = out / f"shopper-study-{data['study_id']}.png"
    assert rep["plots"] == [str(png)] and png.read_bytes()[:4] == b"\x89PNG"
    assert rep["study"] == data["study_id"] and rep["cells"] == data["cells"]
    table = (out / f"shopper-study-{data['study_id']}.md").read_text()
    cell_rows = [line for line in table.splitlines() if "| std/standard |" in line]
    assert len(cell_rows) == 8 and "| car | customer-only |" in table
    assert "FROM session JOIN condition" in rep["sql"]
    # one regression per scenario x model, temperature a control; this policy's overrides
    # are fully determined by the condition (separation): fitted by Firth, said in one line
    (reg,) = rep["regression"]
    assert (reg["parsed"], reg["temperatures"], reg["fitted"]) == (16, [0.2, 0.6], True)
    assert reg["method"] == "firth" and reg["note"].startswith("separation:")
    assert reg["note"] in table and "| firth | info=both (vs neither) |" in table


def test_study_resumes_without_repeating(capsys, db_url):
    args = ["shopper", "study", "--db", db_url, "--scenario", "film", "-m",
            "agent=scripted:rigid", "--reps", "1"]
    first = _json(capsys, args)
    again = _json(capsys, args + ["--resume", str(first["study_id"])])
    assert again["study_id"] == first["study_id"]
    assert [c["n"] for c in again["cells"]] == [1, 1, 1, 1]


def test_market_study_from_the_cli(capsys, db_url):
    data = _json(capsys, ["shopper", "study", "--db", db_url, "--scenario", "market",
                          "-m", "agent=scripted:rigid", "--reps", "2"])
    assert {c["condition"] for c in data["cells"]} == {"both", "principal-only",
                                                       "customer-only", "neither"}
    assert all(c["override_rate"] == 1.0 and c["welfare_loss"] > 0 for c in data["cells"])


def test_user_errors_are_one_line(capsys, db_url):
    base = ["shopper", "study", "--db", db_url, "--reps", "1"]
    one_line_error(capsys, base + ["--scenario", "car", "--scenario", "market",
                                    "-m", "agent=scripted:rigid"], "own study")
    one_line_error(capsys, base + ["--scenario", "boat", "-m", "agent=scripted:rigid"],
                    "unknown scenario")
    one_line_error(capsys, base + ["-m", "customer=scripted:rigid"], "unknown role")
    one_line_error(capsys, ["shopper", "report", "99", "--db", db_url], "no store at")
    Store.open(db_url).close()  # an existing store without that study
    one_line_error(capsys, ["shopper", "report", "99", "--db", db_url], "no study 99")


def test_tinmen_report_uses_the_shopper_report_for_both_agents(capsys, db_url, tmp_path):
    paper = _json(capsys, ["shopper", "study", "--db", db_url, "--scenario", "car", "--reps",
                           "1", "-m", "agent=scripted:info-sensitive",
                           "-m", "agent=scripted:rigid"])
    assert {c["model"] for c in paper["cells"]} == {"scripted:info-sensitive",
                                                    "scripted:rigid"}  # agent role repeats
    market = _json(capsys, ["shopper", "study", "--db", db_url, "--scenario", "market",
                            "--reps", "1", "-m", "agent=scripted:rigid"])
    for study in (paper, market):
        rep = _json(capsys, ["report", str(study["study_id"]), "--db", db_url,
                             "--out", str(tmp_path)])
        assert rep["cells"] == study["cells"] and rep["study"] == study["study_id"]
        assert [open(p, "rb").read(4) for p in rep["plots"]] == [b"\x89PNG"]
        assert open(rep["table"]).read().startswith("| scenario | condition |")


def test_bad_shopper_options_are_named_by_the_options_model(capsys, db_url):
    base = ["shopper", "study", "--db", db_url, "--reps", "1", "-m", "agent=scripted:rigid"]
    one_line_error(capsys, base + ["--max-new-tokens", "0"],
                    "shopper option max_new_tokens=0")
    one_line_error(capsys, base + ["--temperature", "9"], "shopper option temperature=9.0")


def test_report_text_prints_the_regression_line_beside_the_cells(capsys, db_url, tmp_path):
    data = _json(capsys, ["shopper", "study", "--db", db_url, "--scenario", "car", "--reps",
                          "3", "-m", "agent=scripted:info-sensitive"])
    assert main(["shopper", "report", str(data["study_id"]), "--db", db_url,
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "car / scripted:info-sensitive / T=0.2 (12 of 12 parsed)" in text
    assert "separation: every parsed answer is the same" in text
    assert "penalized LR chi2 = " in text and "Pearson chi2" in text
