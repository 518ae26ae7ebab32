"""The shopper with its ``agent`` role bound to a nudged spec: a study whose report says who
wrote what, and whose sessions replay exactly."""

from __future__ import annotations

import json

from tinmen.graphs.replay import replay_session
from tinmen.storage import Store

from tinmen.analysis import handoffs
from tinmen.cli import main

# the base (info-sensitive) is unsure of every product label; the aligned model (rigid,
# which always sides with the second principal) writes the label wherever the base hesitates
NUDGED = {"name": "nudged-shopper", "backend": "nudged", "options": {
    "gamma": 0.3,
    "base": {"backend": "scripted", "source": "info-sensitive",
             "options": {"continues": True, "word_probs": {"1": 0.2, "2": 0.2, "3": 0.2}}},
    "aligned": {"backend": "scripted", "source": "rigid", "options": {"continues": True}}}}


def test_a_shopper_study_with_a_nudged_agent_reports_its_handoffs(capsys, db_url, tmp_path):
    spec = tmp_path / "nudged.json"
    spec.write_text(json.dumps(NUDGED))
    assert main(["shopper", "study", "--db", db_url, "--scenario", "car", "-m",
                 f"agent={spec}", "--reps", "1", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)["study_id"]
    store = Store.open(db_url)
    frame = handoffs(store, study=study)
    assert len(frame) > 0 and set(frame["kind"]) == {"handoff"}
    assert (frame["base_top1"] == 0.2).all() and set(frame["role"]) == {"agent"}
    assert main(["shopper", "report", str(study), "--db", db_url, "--out",
                 str(tmp_path / "rep")]) == 0
    table = (tmp_path / "rep" / f"shopper-study-{study}.md").read_text()
    assert "## Composite models: who wrote what" in table and "| agent | nudged |" in table
    assert replay_session(store, frame["session_id"][0]).identical
