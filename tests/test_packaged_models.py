"""The packaged defaults: SmolLM2-135M-Instruct (GGUF in a PyPI package) and MiniLM.

One module-scoped pool loads SmolLM2 once (tens of seconds the first time: the GGUF is
de-quantised and cached; later loads read the cache)."""

from __future__ import annotations

import json
import time

import pytest
from tinmen.graphs.example import AGENT
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool():
    p = ModelPool()
    yield p
    p.close()


@pytest.fixture(scope="module")
def smol(pool):
    return LiveModels(pool, {"agent": resolve_spec("smollm2")})


def test_smollm2_answers_a_chat_with_logprobs(smol):
    gen = smol.generate("agent", [{"role": "user", "content": "Name a colour. One word."}],
                        max_new_tokens=8)
    assert gen.text.strip() and len(gen.token_logprobs) == len(gen.tokens) > 0
    assert gen.nll > 0


def test_conversion_is_cached(smol, pool):
    from tinmen.models.backends.transformers_lm import TransformersLM

    from tinmen.config import cache_dir

    converted = list((cache_dir() / "converted").glob("SmolLM2-135M-Instruct*"))
    assert len(converted) == 1 and (converted[0] / "model.safetensors").exists()
    start = time.perf_counter()
    again = TransformersLM.from_spec(resolve_spec("smollm2"))
    assert time.perf_counter() - start < 10
    assert again.nbytes() == pool.loaded()[0]["bytes"]


def test_constrained_json_always_validates(smol):
    schema = {"type": "object", "properties": {
        "objects": {"type": "array", "maxItems": 3,
                    "items": {"type": "string", "maxLength": 16}}},
        "required": ["objects"], "additionalProperties": False}
    gen = smol.generate("agent", [{"role": "user", "content":
                                   "List the objects in 'a red ball next to a cat' as JSON."}],
                        max_new_tokens=60, json_schema=schema)
    data = json.loads(gen.text)
    assert set(data) == {"objects"} and len(data["objects"]) <= 3
    assert all(isinstance(o, str) and len(o) <= 16 for o in data["objects"])


def test_choice_distribution_prefers_the_obvious(smol):
    choice = smol.choose("agent", [{"role": "user", "content":
                                    "Is fire hot or cold? Answer with one word."}],
                         ["Hot", "Cold"])
    assert choice.best == "Hot" and choice.top1 > 0.5


def test_example_graph_on_smollm2_is_stored_and_replays(store, pool):
    result = run_session(store, AGENT, {"request": "How long do I boil an egg?"},
                         {"agent": resolve_spec("smollm2")}, pool=pool,
                         options={"max_new_tokens": 12})
    with store.unit_of_work() as uow:
        calls = uow.records.calls(result.session_id)
        assert calls[-1].token_logprobs and calls[-1].model == "smollm2"
        assert len(uow.records.beliefs(result.session_id)) == 2
    report = replay_session(store, result.session_id)
    assert report.identical


def test_minilm_puts_paraphrases_closer():
    models = LiveModels(ModelPool(), {"embedder": resolve_spec("minilm")})
    a, b, c = models.embed("embedder", ["a red circle", "a crimson round disc",
                                        "tax law in Belgium"])
    assert _dot(a, b) > _dot(a, c) + 0.2


def _dot(x, y):
    return sum(p * q for p, q in zip(x, y))
