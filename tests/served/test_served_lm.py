"""``openai-compatible`` against a real vLLM server: scores equal in-process scores on the
same weights, seeded sampling and greedy log-probs are recorded through the pool, JSON-schema
decoding holds, concurrent requests go to the server in parallel, refusals are one line."""

from __future__ import annotations

import json
import threading
import time

import pytest
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.session import checkpointer_for, run_session
from tinmen.models.backends.openai_compatible import OpenAICompatible
from tinmen.models.backends.transformers_lm import TransformersLM
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.protocols import GenerateParams
from tinmen.models.spec import ModelSpec

from tinmen.errors import ServerRefusedError

CHAT = [{"role": "user", "content": "what colour is the star"}]
OPTIONS = [" red", "red", " blue square", "Choice: 1", " the mat", "yes no maybe"]
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["colour", "size"],
          "properties": {"colour": {"enum": ["red", "blue"]}, "size": {"enum": [1, 2, 3]}}}


class Calls:
    """A sink that keeps every call record (what the recorder would store)."""

    def __init__(self) -> None:
        self.records = []

    def model_call(self, record) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def served(vllm_server):
    backend = OpenAICompatible.from_spec(vllm_server.spec())
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def in_process(served_lm_dir):
    return TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                              source=str(served_lm_dir)))


@pytest.mark.parametrize("prompt", ["the cat sat on", CHAT], ids=["text", "chat"])
def test_option_scores_equal_in_process_scores(served, in_process, prompt):
    here = in_process.score(prompt, OPTIONS)
    there = served.score(prompt, OPTIONS)
    worst = max(abs(a - b) for a, b in zip(here, there, strict=True))
    print(f"max |served - in-process| option score: {worst:.2e}")
    assert worst < 1e-3, list(zip(OPTIONS, here, there, strict=True))


@pytest.mark.parametrize("prompt", ["the cat", "Choice:", CHAT], ids=["text", "choice", "chat"])
def test_greedy_logprobs_equal_in_process_generation(served, in_process, prompt):
    """Same weights, same greedy tokens, same per-token log-probs (the texts may differ where
    a token is part of a UTF-8 character: vLLM drops it, transformers shows U+FFFD)."""
    params = GenerateParams(max_new_tokens=6)
    there = served.generate([prompt], params, [0])[0]
    here = in_process.generate([prompt], params, [0])[0]
    assert there.token_logprobs is not None and len(there.token_logprobs) == len(here.tokens)
    for a, b in ((there.token_logprobs, here.token_logprobs),
                 (there.top1_logprobs, here.top1_logprobs)):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3
    # the top-k behind the entropy signal: every value the server lists is one of the
    # in-process top-k (the completions API keys them by token text, so two tokens that
    # decode alike show as one there; the chat API lists them all)
    assert there.topk_logprobs is not None and here.topk_logprobs is not None
    for a_row, b_row in zip(there.topk_logprobs, here.topk_logprobs, strict=True):
        assert abs(a_row[0] - b_row[0]) < 1e-3 and 1 <= len(a_row) <= len(b_row)
        assert all(any(abs(x - y) < 1e-3 for y in b_row) for x in a_row)
        if isinstance(prompt, list):
            assert len(a_row) == len(b_row)


def test_seeded_sampling_is_reproducible_through_the_pool(vllm_server):
    spec, pool = vllm_server.spec(), ModelPool()

    def texts(seed: int) -> list[str]:
        models = LiveModels(pool, {"agent": spec}, seed=seed)
        return [models.generate("agent", CHAT, max_new_tokens=8, temperature=1.5).text
                for _ in range(3)]

    assert texts(7) == texts(7)
    assert texts(7) != texts(8)


def test_greedy_session_records_token_logprobs(store, vllm_server):
    result = run_session(store, EXAMPLE, {"request": "How do I boil an egg?"},
                         {"agent": vllm_server.spec()}, pool=ModelPool(),
                         checkpointer=checkpointer_for(store))
    with store.unit_of_work() as uow:
        rows = [c for c in uow.records.calls(result.session_id) if c.op == "generate"]
        assert len(rows) == 1 and rows[0].device == "served"
        lps, nll = rows[0].token_logprobs, rows[0].nll
        assert lps and all(lp <= 1e-6 for lp in lps)
        assert nll == pytest.approx(-sum(lps))


@pytest.mark.parametrize("prompt", ["A JSON object:", CHAT], ids=["text", "chat"])
def test_json_schema_constrained_output_parses(served, prompt):
    params = GenerateParams(max_new_tokens=40, temperature=1.0, json_schema=SCHEMA)
    for seed in range(3):
        value = json.loads(served.generate([prompt], params, [seed])[0].text)
        assert value["colour"] in ("red", "blue") and value["size"] in (1, 2, 3)


def test_concurrent_requests_go_to_the_server_in_parallel(vllm_server):
    """A served spec that allows batching is not merged by the pool (the server batches):
    every request is its own call, batch size 1, and they overlap in time."""
    spec = vllm_server.spec(name="served-batched").model_copy(update={"max_batch_size": 4})
    sink, spans = Calls(), []
    models = LiveModels(ModelPool(), {"agent": spec}, sink=sink)
    # all four start together: a sampled answer can end early (end-of-sequence), and one
    # started alone could finish before the last thread is even scheduled
    barrier = threading.Barrier(4)

    def call(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        models.generate("agent", f"request {i}", max_new_tokens=48, temperature=1.0)
        spans.append((start, time.perf_counter()))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.batch_size for r in sink.records] == [1, 1, 1, 1]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all four were in flight


def test_an_unknown_served_model_is_a_one_line_config_error(vllm_server):
    wrong = OpenAICompatible.from_spec(vllm_server.spec().model_copy(
        update={"source": "no-such-model"}))
    with pytest.raises(ServerRefusedError, match="refused generate: HTTP 404") as info:
        wrong.generate(["hello"], GenerateParams(max_new_tokens=2), [0])
    assert "\n" not in str(info.value)

