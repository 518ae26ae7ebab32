"""A text-task w2s session (hidden states of a tiny from-config LM) replays identically in
a process where no model package can be imported and the model cache is empty."""

from __future__ import annotations

from offline import replay_offline
from tinmen.graphs.session import run_session
from tinmen.graphs.w2s import AGENT
from tinmen.models.hidden import from_npy
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

OPTIONS = {"task": "text", "weak": "1", "strong": "2", "conflict": "implicit",
           "text": {"n_gt": 16, "n_w2s": 16, "n_test": 12, "n_help": 8},
           "train": {"epochs": 2}, "feature_batch": 8}


def test_a_text_session_replays_offline_from_its_recorded_hidden_states(store, db_url,
                                                                        tmp_path):
    from tiny_models import build_tiny_lm

    spec = resolve_spec(f"transformers-lm:{build_tiny_lm(tmp_path / 'lm', layers=2)}")
    pool = ModelPool()
    result = run_session(store, AGENT, {"data_seed": 3}, {"lm": spec}, pool=pool,
                         options=OPTIONS)
    with store.unit_of_work() as uow:
        calls = [c for c in uow.calls.for_session(result.session_id)]
    states = [c for c in calls if c.op == "hidden_states"]
    # train_weak, train_student, train_strong each asked; the pool computed it once
    assert len(states) == len(calls) == 3 and pool.memo.hits == 2
    array = from_npy(states[0].blobs[states[0].output["blob_sha256"]])
    assert array.shape == (2, 52, 32) and str(array.dtype) == "float32"
    report = replay_offline(db_url, result.session_id, tmp_path / "empty-cache")
    assert report["identical"], report
    assert report["calls_served"] == 3 and report["cache_files"] == []


def test_the_hidden_states_request_carries_its_batch_size(store, tmp_path):
    """Padding can move the last float bits, so the batch size is part of the request."""
    from tiny_models import build_tiny_lm

    spec = resolve_spec(f"transformers-lm:{build_tiny_lm(tmp_path / 'lm', layers=2)}")
    options = {**OPTIONS, "conflict": "none"}
    ids = []
    for batch in (8, 4):
        result = run_session(store, AGENT, {"data_seed": 3}, {"lm": spec}, pool=ModelPool(),
                             options={**options, "feature_batch": batch})
        with store.unit_of_work() as uow:
            rec = uow.calls.for_session(result.session_id)[0]
        assert rec.params == {"layers": [1, 2], "batch_size": batch}
        ids.append(rec.request_hash)
    assert ids[0] != ids[1]
