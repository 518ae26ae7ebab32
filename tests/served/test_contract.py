"""The served backend passes the same TextGenerator contract as every in-process backend:
the conformance tests are imported, not copied, and run here on a backend for the session's
vLLM server (``text_backend`` below replaces the conformance module's fixture)."""

from __future__ import annotations

import pytest
from conformance.test_text_backends import (  # noqa: F401 - collected here, on the server
    test_generate_returns_one_result_per_prompt_with_logprobs,
    test_greedy_is_deterministic,
    test_is_a_text_generator,
    test_max_new_tokens_respected,
    test_score_gives_one_finite_logprob_per_option,
    test_seeded_sampling_is_reproducible,
)
from tinmen.models.backends.openai_compatible import OpenAICompatible


@pytest.fixture(scope="module")
def text_backend(vllm_server):
    backend = OpenAICompatible.from_spec(vllm_server.spec())
    yield backend
    backend.close()
