"""What the served backend does without a server: an unreachable one is a one-line error
after the configured retries, and a response without log-probs records them as absent."""

from __future__ import annotations

import pytest
from servers import free_port
from tinmen.models.backends.openai_compatible import chat_generation, completion_generation
from tinmen.models.client import CallRecord, LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.protocols import Generation
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError, ServedModelError


def unreachable_spec(**options: object) -> ModelSpec:
    return ModelSpec(name="gone", backend="openai-compatible", source="m", options={
        "base_url": f"http://127.0.0.1:{free_port()}/v1", "backoff_s": 0.01, **options})


def test_unreachable_server_is_one_line_error_after_the_retries():
    models = LiveModels(ModelPool(), {"agent": unreachable_spec(retries=2)})
    with pytest.raises(ServedModelError, match=r"after 3 attempts \(2 retries\)") as info:
        models.generate("agent", "hello")
    assert info.value.retries == 2 and "\n" not in str(info.value)
    assert "ConnectError" in str(info.value)


def test_missing_api_key_variable_is_named():
    models = LiveModels(ModelPool(), {"agent": unreachable_spec(api_key_env="TINMEN_NO_KEY")})
    with pytest.raises(ConfigError, match=r"\$TINMEN_NO_KEY, which is not set"):
        models.score("agent", "hello", ["a", "b"])


def test_bad_options_are_one_line_config_errors():
    spec = unreachable_spec(max_concurency=3)
    with pytest.raises(ConfigError, match="field 'max_concurency'"):
        LiveModels(ModelPool(), {"agent": spec}).generate("agent", "hi")


@pytest.mark.parametrize("parse, choice", [
    (completion_generation, {"text": "hi", "logprobs": None, "finish_reason": "length"}),
    (chat_generation, {"message": {"content": "hi"}, "finish_reason": "stop"}),
], ids=["completion", "chat"])
def test_a_response_without_logprobs_records_them_as_absent(parse, choice):
    gen = parse(choice)
    assert gen.token_logprobs is None and gen.top1_logprobs is None
    output = gen.to_json()
    assert output["token_logprobs"] is None and Generation.from_json(output) == gen
    record = CallRecord(role="a", op="generate", call_index=0, spec={}, params={}, inputs={},
                        request_hash="h", seed=0, output=output)
    assert record.token_logprobs is None  # stored as NULL, so nll is NULL too, never 0
