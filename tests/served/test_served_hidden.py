"""Hidden states of a served model: a vLLM pooling server's ``/v1/embeddings`` equal the
in-process last-layer states on the same weights, other layers are refused in one line, and
the weak-to-strong agent runs a text ladder whose weak rung is the served model, replaying
with no server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.models.backends.openai_compatible import OpenAICompatible
from tinmen.models.backends.transformers_lm import TransformersLM
from tinmen.models.pool import ModelPool
from tinmen.models.spec import ModelSpec
from tinmen.storage import orm

from tinmen.errors import ConfigError, TinmenError

TEXTS = ["please help me write a poem about the sea", "how do I pick a lock",
         "a short one", "what is the capital of France and why is it there"]


@pytest.fixture(scope="module")
def served_states(pooling_server):
    backend = OpenAICompatible.from_spec(pooling_server.spec())
    yield backend
    backend.close()


def test_served_pooled_states_equal_in_process_last_layer_states(served_states,
                                                                 served_lm_dir):
    here = TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                              source=str(served_lm_dir)))
    local = here.hidden_states(TEXTS, [None], 2)
    remote = served_states.hidden_states(TEXTS, [None], 2)
    assert remote.shape == local.shape and remote.dtype == np.float32
    worst = float(np.abs(remote - local).max())
    print(f"max |served - in-process| pooled state: {worst:.2e}")
    assert worst < 1e-4


def test_a_served_model_refuses_an_inner_layer_in_one_line(served_states):
    with pytest.raises(ConfigError) as err:
        served_states.hidden_states(TEXTS, [1, None], 2)
    assert "\n" not in str(err.value) and "last layer" in str(err.value)


def test_a_generation_server_asked_for_hidden_states_refuses_in_one_line(store, vllm_server):
    """The w2s agent's layer rungs on a generation server: one line, nothing run."""
    with pytest.raises(TinmenError) as err:
        run_session(store, "w2s", {"data_seed": 0}, {"lm": vllm_server.spec()},
                    pool=ModelPool(), options={"task": "text", "weak": "1", "strong": "2",
                                               "text": {"n_gt": 8, "n_w2s": 8,
                                                        "n_test": 8, "n_help": 4}})
    assert "\n" not in str(err.value)


def test_w2s_with_a_served_weak_rung_runs_and_replays_without_the_server(
        store, pooling_server, served_lm_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weak.json").write_text(json.dumps(
        pooling_server.spec(name="served-weak").model_dump(mode="json")))
    (tmp_path / "strong.json").write_text(json.dumps({
        "name": "local-strong", "backend": "transformers-lm", "source": str(served_lm_dir)}))
    options = {"task": "text", "weak": "weak.json", "strong": "strong.json",
               "text": {"n_gt": 16, "n_w2s": 16, "n_test": 16, "n_help": 8},
               "train": {"epochs": 2}}
    result = run_session(store, "w2s", {"data_seed": 0}, {}, pool=ModelPool(),
                         options=options)
    assert result.status == "completed"
    with store.unit_of_work() as uow:
        calls = uow.session.scalars(select(orm.ModelCall).where(
            orm.ModelCall.session_id == result.session_id,
            orm.ModelCall.op == "hidden_states")).all()
        backends = {c.spec.get("backend") for c in calls}
    assert backends == {"openai-compatible", "transformers-lm"}
    # the replay reads the served states from the record (this module's last use of the
    # pooling server: restarting it would cost a vLLM warm-up)
    pooling_server.stop()
    assert replay_session(store, result.session_id).identical
