"""Batching across sessions: continuous batching in ``transformers-lm`` (requests join a
running batch between decode steps, finished ones leave) and batched scoring, both giving
exactly what one-at-a-time calls give."""

from __future__ import annotations

import threading

import pytest
import torch
from test_pool import Sink
from tinmen.models.backends.transformers_lm import TransformersLM
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.protocols import GenerateParams
from tinmen.models.spec import ModelSpec
from tiny_models import build_tiny_lm

CHAT = [{"role": "user", "content": "what colour is the star"}]
PROMPTS = [CHAT, "hello", "a red circle on the left of a blue square", "the cat",
           [{"role": "user", "content": "yes"}], "0 1 2 3 4 5 6 7 8 9 0 1 2 3"]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm-batching"))


@pytest.fixture(scope="module")
def lm(lm_path):
    return TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                              source=str(lm_path)))


def alone(lm, prompt, params, seed):
    return lm.generate([prompt], params, [seed])[0]


def test_requests_join_and_leave_the_running_batch(lm):
    """Joining between steps (shorter and longer prompts than the batch), leaving when done,
    greedy and sampled rows mixed: every output equals its one-at-a-time output."""
    reqs = [(p, GenerateParams(max_new_tokens=n, temperature=t), seed)
            for p, n, t, seed in zip(PROMPTS, [9, 3, 12, 5, 7, 10],
                                     [0.0, 0.0, 1.0, 0.0, 1.3, 0.0], [1, 2, 3, 4, 5, 6])]
    batch, out, sizes = lm.decode_batch(), {}, []
    for i, (prompt, params, seed) in enumerate(reqs):
        out.update(batch.add([(i, prompt, params, seed)]))
        for _ in range(i % 3):  # the next request arrives a few decode steps later
            out.update(batch.step())
            sizes.append(batch.size)
    while batch.size:
        out.update(batch.step())
        sizes.append(batch.size)
    assert max(sizes) >= 3 and sizes[-1] == 0
    for i, (prompt, params, seed) in enumerate(reqs):
        ref = alone(lm, prompt, params, seed)
        assert out[i].tokens == ref.tokens and out[i].text == ref.text
        assert out[i].finish_reason == ref.finish_reason
        assert out[i].token_logprobs == pytest.approx(ref.token_logprobs, abs=1e-5)
        assert out[i].top1_logprobs == pytest.approx(ref.top1_logprobs, abs=1e-5)


def test_greedy_batch_equals_transformers_own_generate(lm):
    """An independent oracle for the decode loop itself (positions, cache, masks)."""
    params = GenerateParams(max_new_tokens=8)
    batch = lm.decode_batch()
    out = dict(batch.add([(i, p, params, 0) for i, p in enumerate(PROMPTS)]))
    while batch.size:
        out.update(batch.step())
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor([lm._encode(lm.render(prompt))])
        with torch.inference_mode():
            ref = lm.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=8, eos_token_id=sorted(lm.eos_ids),
                                    pad_token_id=lm.tokenizer.pad_token_id,
                                    output_logits=True, return_dict_in_generate=True)
        new = [t for t in ref.sequences[0, ids.shape[1]:].tolist() if t not in lm.eos_ids]
        assert out[i].tokens == tuple(lm.tokenizer.decode([t]) for t in new)
        logprobs = [float(torch.log_softmax(step[0].float(), -1)[t])
                    for step, t in zip(ref.logits, new)]
        assert out[i].token_logprobs == pytest.approx(logprobs, abs=1e-5)


def test_a_sample_does_not_depend_on_its_batch_mates(lm):
    params = GenerateParams(max_new_tokens=10, temperature=1.5)
    ref = alone(lm, CHAT, params, 42)
    for mates in ([("x", "hello", params, 1)],
                  [("x", "the cat", params, 42), ("y", PROMPTS[2], params, 7)],
                  [("x", PROMPTS[5], GenerateParams(max_new_tokens=2), 0)]):
        batch = lm.decode_batch()
        out = dict(batch.add(mates))
        out.update(batch.step())
        out.update(batch.add([("me", CHAT, params, 42)]))
        while batch.size:
            out.update(batch.step())
        assert out["me"].tokens == ref.tokens


def test_batched_scores_equal_unbatched_unpadded_scores(lm):
    requests = [(CHAT, ["red", "blue square", "Choice: 1"]), ("the cat", [" sat", " on the mat"]),
                (PROMPTS[2], ["yes", "no maybe"]), ("hello", [" world"])]
    batched = lm.score_batch([p for p, _ in requests], [o for _, o in requests])
    for (prompt, options), got in zip(requests, batched):
        assert lm.score(prompt, options) == pytest.approx(got, abs=1e-5)
        assert got == pytest.approx([reference_score(lm, prompt, o) for o in options], abs=1e-5)


def reference_score(lm, prompt, option):
    """One sequence, no padding, no mask, all logits: the plainest possible computation."""
    prefix, cont = lm._encode(lm.render(prompt)), lm._encode(option)
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([prefix + cont])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[len(prefix) + j - 1, t]) for j, t in enumerate(cont))




def run_sessions(pool, spec, work, n):
    """``n`` sessions on threads, released together; ``work(models, i)`` is one session."""
    sink, barrier, errors = Sink(), threading.Barrier(n), []

    def session(i: int) -> None:
        try:
            models = LiveModels(pool, {"agent": spec}, sink=sink, seed=i)
            barrier.wait()
            work(models, i)
        except BaseException as exc:  # surfaced below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return sink.records


def test_pool_batches_concurrent_generates_continuously(lm, lm_path):
    spec = ModelSpec(name="t", backend="transformers-lm", source=str(lm_path),
                     max_batch_size=4, batch_wait_ms=200)
    lengths = [3, 9, 5, 12, 4, 7]
    results = {}

    def work(models, i):
        results[i] = models.generate("agent", PROMPTS[i], max_new_tokens=lengths[i])

    records = run_sessions(ModelPool(), spec, work, len(PROMPTS))
    assert max(r.batch_size for r in records) == 4  # never more than max_batch_size
    assert all(r.queue_wait_s >= 0 for r in records)
    for i, gen in results.items():
        params = GenerateParams(max_new_tokens=lengths[i])
        assert gen.tokens == alone(lm, PROMPTS[i], params, 0).tokens


def test_pool_batches_concurrent_scores(lm, lm_path):
    spec = ModelSpec(name="t", backend="transformers-lm", source=str(lm_path),
                     max_batch_size=8, batch_wait_ms=2000)
    options = [["red", "blue square"], [" sat", " on the mat", "x"], ["yes"]]
    results = {}

    def work(models, i):
        results[i] = models.score("agent", PROMPTS[i], options[i % 3])

    records = run_sessions(ModelPool(), spec, work, len(PROMPTS))
    assert [r.batch_size for r in records] == [len(PROMPTS)] * len(PROMPTS)
    for i, scores in results.items():
        assert scores == pytest.approx(lm.score(PROMPTS[i], options[i % 3]), abs=1e-5)


def test_scores_are_served_between_decode_steps(lm, lm_path):
    """Sessions scoring while others generate: one worker serves both, results unchanged."""
    spec = ModelSpec(name="t", backend="transformers-lm", source=str(lm_path),
                     max_batch_size=8, batch_wait_ms=50)
    results = {}

    def work(models, i):
        if i % 2:
            results[i] = models.score("agent", PROMPTS[i], ["red", " on the mat"])
        else:
            results[i] = models.generate("agent", PROMPTS[i], max_new_tokens=10).tokens

    run_sessions(ModelPool(), spec, work, len(PROMPTS))
    for i, got in results.items():
        if i % 2:
            assert got == pytest.approx(lm.score(PROMPTS[i], ["red", " on the mat"]), abs=1e-5)
        else:
            assert got == alone(lm, PROMPTS[i], GenerateParams(max_new_tokens=10), 0).tokens
