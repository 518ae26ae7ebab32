"""Capability contracts every backend implements, and the values they return.

A backend implements one or more capabilities. Each capability has few required methods;
conveniences (choice distributions, entropies) are derived once in ``tinmen.models.client``.
A prompt is either plain text or a list of chat messages ``{"role", "content"}``; text
backends apply their chat template to messages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]
TOP_K = 5  # log-probs kept per generated token for the top-k entropy
Prompt = str | list[Message]


class GenerateParams(BaseModel):
    """Decoding parameters of one text-generation request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=64, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0, description="0 = greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = Field(default=(), description="Cut the text at the first of these.")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Constrain the output to this JSON schema (grammar decoding).")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Generation:
    """A generated continuation with the model's own per-token log-probabilities."""

    text: str
    tokens: tuple[str, ...] = ()
    # None = the model (a served one) gave no log-probs: absent, never recorded as 0
    token_logprobs: tuple[float, ...] | None = ()
    top1_logprobs: tuple[float, ...] | None = ()
    finish_reason: str = "stop"
    # the k largest log-probs at each position (k = TOP_K where the backend gives them),
    # for the top-k entropy of models/uncertainty.py; None = not reported
    topk_logprobs: tuple[tuple[float, ...], ...] | None = None

    @property
    def nll(self) -> float:
        """Realized negative log-likelihood of the text (G-NLL when decoded greedily);
        NaN where the log-probs are absent, so a missing value never reads as certainty."""
        if self.token_logprobs is None:
            return math.nan
        return -float(sum(self.token_logprobs))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "tokens": list(self.tokens),
                               "token_logprobs": _list_or_none(self.token_logprobs),
                               "top1_logprobs": _list_or_none(self.top1_logprobs),
                               "finish_reason": self.finish_reason}
        if self.topk_logprobs is not None:  # absent key = not reported (older records too)
            out["topk_logprobs"] = [list(row) for row in self.topk_logprobs]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Generation:
        return cls(text=data["text"], tokens=tuple(data.get("tokens", ())),
                   token_logprobs=_tuple_or_none(data.get("token_logprobs", ())),
                   top1_logprobs=_tuple_or_none(data.get("top1_logprobs", ())),
                   finish_reason=data.get("finish_reason", "stop"),
                   topk_logprobs=None if data.get("topk_logprobs") is None else tuple(
                       tuple(float(x) for x in row) for row in data["topk_logprobs"]))


def _list_or_none(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else list(values)


def _tuple_or_none(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


@dataclass
class CallStats:
    """How a backend call was served; the pool fills it and the recorder stores it."""

    latency_s: float = 0.0
    queue_wait_s: float = 0.0
    batch_size: int = 1
    device: str = "cpu"
    retries: int = 0  # transient failures retried before the answer (served backends)
    extra: dict[str, Any] = field(default_factory=dict)


# The stats of the call the pool is serving on this thread: a backend that retries a request
# (``openai-compatible``) reports the count here, since its methods return only outputs.
CURRENT_STATS: ContextVar[CallStats | None] = ContextVar("tinmen_call_stats", default=None)


def report_retries(count: int) -> None:
    """Add ``count`` retries to the stats of the call being served (if any)."""
    stats = CURRENT_STATS.get()
    if stats is not None and count:
        stats.retries += count


@runtime_checkable
class Backend(Protocol):
    """What the pool needs from every loaded model."""

    def nbytes(self) -> int: ...
    def device(self) -> str: ...
    def to_device(self, device: str) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class TextGenerator(Protocol):
    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        """Continue each prompt; ``seeds[i]`` makes sampling of prompt i reproducible."""
        ...

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Total log-probability of each option as the continuation of ``prompt``."""
        ...


@runtime_checkable
class ImageGenerator(Protocol):
    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int],
                        params: dict[str, Any]) -> list[Any]:
        """One PIL image per prompt."""
        ...


@runtime_checkable
class ImageTextScorer(Protocol):
    def score_image_text(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        """Alignment of ``images[i]`` with ``texts[i]`` (higher = better aligned)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text."""
        ...


@runtime_checkable
class HiddenStates(Protocol):
    def hidden_states(self, texts: Sequence[str], layers: Sequence[int | None],
                      batch_size: int) -> Any:
        """(len(layers), len(texts), width) float32 array: the states after each layer
        (None = the last), mean-pooled over each text's tokens (``models/hidden.py``)."""
        ...


@runtime_checkable
class Trainer(Protocol):
    def train(self, recipe: str, config: dict[str, Any], data: dict[str, Any],
              checkpoints: dict[str, bytes]) -> tuple[bytes, dict[str, float]]:
        """Run ``recipe`` from the input checkpoints (sha256 -> safetensors bytes); the new
        checkpoint's bytes and the recipe's metrics (``models/backends/trainer.py``)."""
        ...


CAPABILITIES: dict[str, type] = {
    "generate": TextGenerator,
    "score": TextGenerator,
    "generate_images": ImageGenerator,
    "score_image_text": ImageTextScorer,
    "embed": Embedder,
    "hidden_states": HiddenStates,
    "train": Trainer,
}
