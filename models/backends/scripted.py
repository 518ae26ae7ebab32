"""``scripted``: deterministic rule-driven models, registered like any real backend.

A scripted model is a *policy* object with ``respond(prompt, params, seed) -> str`` and,
optionally, ``score(prompt, options) -> list[float]`` (log-probs). Policies live beside the
agent they serve and are named in :data:`POLICIES` as lazy ``"module:attr"`` strings, so
importing the models layer never imports an agent; installed packages add names through the
``tinmen.policies`` entry-point group, and a spec's source may also be an import path
(``scripted:my_pkg.policies:MyPolicy``). The backend passes the same conformance tests as the
neural ones: it reports tokens, log-probs and a byte size like they do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from tinmen.models.protocols import GenerateParams, Generation, Prompt
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError, UnknownModelError
from tinmen.plugins import Registry

POLICIES = Registry("scripted policy", "tinmen.policies", {
    "echo": "tinmen.models.backends.scripted:EchoPolicy",
    "t2i": "tinmen.agents.t2i.scripted:T2IPolicy",
    "info-sensitive": "tinmen.agents.shopper.scripted:InfoSensitivePolicy",
    "rigid": "tinmen.agents.shopper.scripted:RigidPolicy",
    "shopper-customer": "tinmen.agents.shopper.scripted:CustomerPolicy",
    "judge-noisy": "tinmen.agents.judge.scripted:NoisyOracleJudge",
})

MATCH_LOGPROB = math.log(0.9)


class ScriptedPolicy(Protocol):
    def respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str: ...


def prompt_text(prompt: Prompt) -> str:
    """The text of a prompt; for chat messages, the last user message."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


class EchoPolicy:
    """Repeats the prompt's last user text; the simplest reference policy."""

    def respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str:
        return prompt_text(prompt)


def load_policy(name: str) -> Any:
    """A fresh policy object for a registered name or a ``module:ATTR`` / ``FILE.py:ATTR``."""
    try:
        return POLICIES.load(name, references=True)()
    except ConfigError as exc:
        raise UnknownModelError(str(exc)) from exc.__cause__


class Weightless:
    """Backend bookkeeping for models with no weights: tiny, always on the CPU."""

    def nbytes(self) -> int:
        return 1024

    def device(self) -> str:
        return "cpu"

    def to_device(self, device: str) -> None:
        return None

    def close(self) -> None:
        return None


# where a rendered prompt's answer starts (models/composite.py templates): a scripted model
# with ``continues`` reads the text after the last of these as its answer so far
ANSWER_MARKERS = ("<|im_start|>assistant\n", "\nassistant:")


class ScriptedBackend(Weightless):
    """Text generation and scoring by a scripted policy (no weights, always on CPU).

    Two spec options construct what composite models need, so their handoff points are
    known in advance: ``word_probs`` ({word: p}) gives those words the log-prob and top-1
    log-prob ``log p`` (every other word ``log 0.9``) and reports it as the top-1 of the
    top-k log-probs; ``continues`` (bool) makes the model continue an answer begun
    after the prompt's answer marker, by word position in the policy's own answer.
    """

    def __init__(self, policy: Any, *, word_probs: dict[str, float] | None = None,
                 continues: bool = False) -> None:
        self.policy = policy
        self.word_probs = dict(word_probs) if word_probs is not None else None
        self.continues = continues

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ScriptedBackend:
        probs = spec.options.get("word_probs")
        if probs is not None and (not isinstance(probs, dict) or not all(
                isinstance(v, int | float) and 0 < v <= 1 for v in probs.values())):
            raise ConfigError(f"scripted spec '{spec.name}': option word_probs must map words "
                              "to probabilities in (0, 1]")
        return cls(load_policy(spec.source or "echo"), word_probs=probs,
                   continues=bool(spec.options.get("continues", False)))

    def _respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str:
        if not (self.continues and isinstance(prompt, str)):
            return self.policy.respond(prompt, params, seed)
        cut = max((prompt.rfind(m) + len(m) for m in ANSWER_MARKERS if m in prompt),
                  default=-1)
        if cut < 0:
            return self.policy.respond(prompt, params, seed)
        head, written = prompt[:cut], prompt[cut:].split()
        return " ".join(self.policy.respond(head, params, seed).split()[len(written):])

    # -- TextGenerator ----------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        return [self._one(p, params, s) for p, s in zip(prompts, seeds, strict=True)]

    def _one(self, prompt: Prompt, params: GenerateParams, seed: int) -> Generation:
        text = self._respond(prompt, params, seed)
        for stop in params.stop:
            if stop in text:
                text = text[: text.index(stop)]
        words = text.split()
        finish = "stop"
        if len(words) > params.max_new_tokens:
            words, finish = words[: params.max_new_tokens], "length"
            text = " ".join(words)
        if self.word_probs is None:
            lps = tuple(MATCH_LOGPROB for _ in words)
            return Generation(text=text, tokens=tuple(words), token_logprobs=lps,
                              top1_logprobs=lps, finish_reason=finish)
        probs = [float(self.word_probs.get(w, 0.9)) for w in words]
        lps = tuple(math.log(p) for p in probs)
        topk = tuple((lp,) for lp in lps)  # the rest of the mass: models/uncertainty.py
        return Generation(text=text, tokens=tuple(words), token_logprobs=lps,
                          top1_logprobs=lps, finish_reason=finish, topk_logprobs=topk)

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        if hasattr(self.policy, "score"):
            return [float(x) for x in self.policy.score(prompt, list(options))]
        answer = self.policy.respond(prompt, GenerateParams(), 0).strip()
        hits = [bool(o.strip()) and answer.startswith(o.strip()) for o in options]
        n_hit = sum(hits)
        if n_hit == 0:
            return [-math.log(len(options))] * len(options)
        rest = len(options) - n_hit
        miss = math.log(0.1 / rest) if rest else float("-inf")
        return [math.log(0.9 / n_hit) if h else miss for h in hits]
