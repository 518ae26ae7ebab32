"""Every TextGenerator and Embedder backend passes the same contract, the scripted fake
included (langgraph's checkpoint-conformance pattern)."""

from __future__ import annotations

import math

import pytest
from tinmen.models.backends.embedder import SentenceEmbedder
from tinmen.models.backends.scripted import ScriptedBackend
from tinmen.models.backends.transformers_lm import TransformersLM
from tinmen.models.protocols import Embedder, GenerateParams, TextGenerator
from tinmen.models.spec import ModelSpec
from tiny_models import build_tiny_embedder, build_tiny_lm

CHAT = [{"role": "user", "content": "what colour is the star"}]


# composite specs over scripted constituents: the base is unsure (p = 0.2) of "colour", so
# the nudged model hands off there, and the cascade defers on the same word
_SURE = {"backend": "scripted", "source": "echo", "options": {"continues": True}}
_UNSURE = {"backend": "scripted", "source": "echo",
           "options": {"continues": True, "word_probs": {"colour": 0.2}}}
COMPOSITES = {
    "nudged": {"base": _UNSURE, "aligned": _SURE, "gamma": 0.3},
    "cascade": {"small": _UNSURE, "large": _SURE, "rule": "chow-quantile", "threshold": 0.5,
                "choice_top1": 0.9},
}


@pytest.fixture(scope="module", params=["scripted", "transformers-lm", *COMPOSITES])
def text_backend(request, tmp_path_factory):
    if request.param == "scripted":
        return ScriptedBackend.from_spec(ModelSpec(name="s", backend="scripted", source="echo"))
    if request.param in COMPOSITES:
        from tinmen.models.composite import CompositeLM, normalized
        from tinmen.models.registry import resolve_spec

        spec = normalized(ModelSpec(name=request.param, backend=request.param,
                                    options=COMPOSITES[request.param]), resolve_spec)
        return CompositeLM.from_spec(spec)
    path = build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))
    return TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                              source=str(path)))


def test_is_a_text_generator(text_backend):
    assert isinstance(text_backend, TextGenerator)
    # an in-process model counts its bytes on the CPU; a served one holds none here
    served = text_backend.device() == "served"
    assert text_backend.nbytes() == 0 if served else (
        text_backend.nbytes() > 0 and text_backend.device() == "cpu")
    text_backend.to_device("cpu")


def test_generate_returns_one_result_per_prompt_with_logprobs(text_backend):
    params = GenerateParams(max_new_tokens=6)
    gens = text_backend.generate([CHAT, "the cat sat"], params, [1, 2])
    assert len(gens) == 2
    for gen in gens:
        assert len(gen.tokens) == len(gen.token_logprobs) == len(gen.top1_logprobs) <= 6
        assert all(lp <= 1e-6 for lp in gen.token_logprobs)
        assert all(t >= lp - 1e-6 for t, lp in zip(gen.top1_logprobs, gen.token_logprobs))
        assert gen.finish_reason in ("stop", "length")


def test_greedy_is_deterministic(text_backend):
    params = GenerateParams(max_new_tokens=6)
    a = text_backend.generate([CHAT], params, [1])[0]
    b = text_backend.generate([CHAT], params, [99])[0]
    assert a == b


def test_seeded_sampling_is_reproducible(text_backend):
    params = GenerateParams(max_new_tokens=8, temperature=1.0)
    first = text_backend.generate([CHAT, CHAT], params, [5, 6])
    again = text_backend.generate([CHAT, CHAT], params, [5, 6])
    assert first == again


def test_max_new_tokens_respected(text_backend):
    gen = text_backend.generate(["the cat sat on the mat the cat"],
                                GenerateParams(max_new_tokens=2), [0])[0]
    assert len(gen.tokens) <= 2


def test_score_gives_one_finite_logprob_per_option(text_backend):
    scores = text_backend.score(CHAT, ["red", "blue square", "Choice: 1"])
    assert len(scores) == 3
    assert all(math.isfinite(s) and s <= 1e-6 for s in scores)


# ------------------------------------------------------------- neural-only contract
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    path = build_tiny_lm(tmp_path_factory.mktemp("tiny-lm2"))
    return TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                              source=str(path)))


def test_batched_equals_single_generation(tiny_lm):
    params = GenerateParams(max_new_tokens=6, temperature=0.9)
    prompts = [CHAT, "a red circle", "hello"]
    batched = tiny_lm.generate(prompts, params, [1, 2, 3])
    single = [tiny_lm.generate([p], params, [s])[0] for p, s in zip(prompts, [1, 2, 3])]
    assert [g.text for g in batched] == [g.text for g in single]


def test_different_seeds_can_differ(tiny_lm):
    params = GenerateParams(max_new_tokens=8, temperature=2.0)
    texts = {tiny_lm.generate([CHAT], params, [s])[0].text for s in range(6)}
    assert len(texts) > 1


def test_score_matches_generation_logprobs(tiny_lm):
    checked = 0
    for prompt in ["the cat", "a red circle", "hello world", "Choice:"]:
        gen = tiny_lm.generate([prompt], GenerateParams(max_new_tokens=4), [0])[0]
        # only where the text re-tokenizes to the same ids (BPE merges can differ)
        if gen.text and len(tiny_lm._encode(gen.text)) == len(gen.tokens):
            assert tiny_lm.score(prompt, [gen.text])[0] == pytest.approx(
                sum(gen.token_logprobs), abs=1e-4)
            checked += 1
    assert checked >= 1


def test_stop_strings_cut_the_text(tiny_lm):
    gen = tiny_lm.generate(["the"], GenerateParams(max_new_tokens=12, temperature=1.5,
                                                    stop=("e",)), [3])[0]
    assert "e" not in gen.text


def test_missing_local_model_is_a_clear_error(tmp_path):
    from tinmen.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        TransformersLM.from_spec(ModelSpec(name="x", backend="transformers-lm",
                                           source=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="never downloads"):
        TransformersLM.from_spec(ModelSpec(name="x", backend="transformers-lm",
                                           source="someone/not-cached-model"))


# ------------------------------------------------------------- embedders
@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    path = build_tiny_embedder(tmp_path_factory.mktemp("tiny-emb"))
    return SentenceEmbedder.from_spec(ModelSpec(name="e", backend="sentence-embedder",
                                                source=str(path)))


def test_embedder_contract(tiny_embedder):
    assert isinstance(tiny_embedder, Embedder) and tiny_embedder.nbytes() > 0
    vecs = tiny_embedder.embed(["a red circle", "the cat sat"])
    assert len(vecs) == 2 and len(vecs[0]) == 32
    for v in vecs:
        assert sum(x * x for x in v) == pytest.approx(1.0, abs=1e-5)
