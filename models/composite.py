"""Composite text models: two pool models that write one answer together.

* ``nudged`` — Nudging (Fei et al., "Nudging: Inference-time Alignment via Model
  Collaboration"): a *base* model writes; wherever its top-1 next-token probability falls
  below ``gamma``, the *aligned* model writes the next span (one word, or one token), and
  the base continues after it.
* ``cascade`` — a token-level cascade (Gupta et al., "Language Model Cascades: Token-level
  uncertainty and beyond"): a *small* model answers; the answer is deferred to the *large*
  model when a deferral score of the small answer's per-token NLL exceeds ``threshold``
  (``seq-nll``: sum; ``mean-nll``; ``chow-quantile``: the ``quantile`` of the per-token
  NLL; ``top1-min``: one minus the lowest top-1 probability).

A composite spec is a :class:`~tinmen.models.spec.ModelSpec` whose ``backend`` is
``nudged`` or ``cascade`` and whose options name its two constituents (any spec text a role
accepts — a registered name, ``BACKEND:SOURCE``, a spec file — or a spec dict); they are
resolved to full spec dicts when the spec is read (:func:`normalized`), so the stored
session names exactly what ran.

The algorithms (:class:`Nudged`, :class:`Cascade`) see their constituents only through a
:class:`Constituents` object. In a session that is the role-bound
:class:`~tinmen.models.client.Models` (``models/client.py``): every constituent call is
its own recorded model call (roles ``ROLE.base`` / ``ROLE.aligned`` / ``ROLE.small`` /
``ROLE.large``), shared and batched by the pool like any other, every handoff is a
recorded decision (kind ``handoff`` or ``deferral``), and a replay serves the recorded
constituent calls, so it needs no weights. Loaded directly by a pool
(:class:`CompositeLM`), the constituents are served by that pool, unrecorded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tinmen.models.protocols import GenerateParams, Generation, Prompt
from tinmen.models.spec import ModelSpec, validated_model
from tinmen.models.uncertainty import chow_quantile, option_probs

from tinmen.errors import ConfigError

COMPOSITES = ("nudged", "cascade")
PARTS: Mapping[str, tuple[str, str]] = {"nudged": ("base", "aligned"),
                                        "cascade": ("small", "large")}
RULES = ("seq-nll", "mean-nll", "chow-quantile", "top1-min")
# how each constituent sees the prompt: its answer is appended after the template's end
TEMPLATES = ("plain", "chatml", "raw")
# backends whose generations carry per-token top-1 log-probs (the Nudging trigger); a
# served model may still omit them, which the first base call reports
TOP1_BACKENDS = frozenset({"transformers-lm", "scripted", "openai-compatible"})


def is_composite(spec: ModelSpec) -> bool:
    return spec.backend in COMPOSITES


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    templates: dict[str, str] = Field(
        default_factory=dict, description="Constituent -> 'plain' | 'chatml' | 'raw' | a "
        "format string with {prompt}: how its prompt is rendered (default 'plain').")
    join: Literal["auto", "concat", "space"] = Field(
        default="auto", description="How pieces join: 'concat' (subword tokens carry their "
        "spaces), 'space' (word-level scripted models); 'auto' = space for scripted.")

    @field_validator("templates")
    @classmethod
    def _known_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, tpl in value.items():
            if tpl in TEMPLATES:
                continue
            try:
                tpl.format(prompt="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"template of '{name}' is not a format string with only "
                                 f"{{prompt}} ({exc!r})") from exc
            if "{prompt}" not in tpl:
                raise ValueError(f"template of '{name}' must be one of {', '.join(TEMPLATES)} "
                                 "or contain {prompt}")
        return value


class NudgedOptions(_Options):
    """Options of a ``nudged`` spec."""

    base: dict[str, Any] = Field(description="The model that writes the answer.")
    aligned: dict[str, Any] = Field(description="The model that writes the nudging spans.")
    gamma: float = Field(default=0.3, gt=0.0, lt=1.0,
                         description="Nudge where the base's top-1 probability is below this.")
    span: Literal["word", "token"] = Field(
        default="word", description="What the aligned model writes at a nudge: one word "
        "(up to the next whitespace) or one token.")
    span_tokens: int = Field(default=8, ge=1, le=256,
                             description="Token limit of one aligned call.")
    chunk_tokens: int = Field(default=16, ge=1, le=8192,
                              description="Tokens the base drafts per call (the draft past "
                              "a nudge is dropped).")
    score_by: Literal["base", "aligned"] = Field(
        default="base", description="Which constituent scores options (choose/score).")


class CascadeOptions(_Options):
    """Options of a ``cascade`` spec."""

    small: dict[str, Any] = Field(description="The model that answers first.")
    large: dict[str, Any] = Field(description="The model deferred to.")
    rule: Literal["seq-nll", "mean-nll", "chow-quantile", "top1-min"] = Field(
        default="chow-quantile", description="Deferral score of the small answer.")
    threshold: float = Field(default=1.0, ge=0.0, description="Defer when the score is above.")
    quantile: float = Field(default=0.8, ge=0.0, le=1.0,
                            description="The per-token NLL quantile of 'chow-quantile'.")
    choice_top1: float = Field(default=0.0, ge=0.0, le=1.0,
                               description="choose/score: defer when the small model's top "
                               "option probability is below this (0 = never).")


def options_of(spec: ModelSpec) -> NudgedOptions | CascadeOptions:
    """The validated options of a composite spec, as a one-line error where they are bad."""
    kind = NudgedOptions if spec.backend == "nudged" else CascadeOptions
    return validated_model(kind, spec.options, f"{spec.backend} spec '{spec.name}'")


def constituent_specs(spec: ModelSpec) -> dict[str, ModelSpec]:
    """Part name -> the constituent's spec, e.g. {"base": ..., "aligned": ...}."""
    opts = options_of(spec)
    return {part: ModelSpec.validated(getattr(opts, part), where=f"{spec.name}.{part}")
            for part in PARTS[spec.backend]}


def normalized(spec: ModelSpec, resolve: Callable[[str], ModelSpec]) -> ModelSpec:
    """``spec`` with each constituent resolved to a full spec dict and checked: known,
    a text model, not itself composite, top-1 log-probs for a nudged base."""
    options = dict(spec.options)
    for part in PARTS[spec.backend]:
        given = options.get(part)
        if isinstance(given, str):
            options[part] = resolve(given).model_dump(mode="json")
        elif isinstance(given, dict):
            options[part] = ModelSpec.validated(
                {"name": f"{spec.name}.{part}", **given},
                where=f"{spec.name}.{part}").model_dump(mode="json")
        elif given is not None:
            raise ConfigError(f"{spec.backend} spec '{spec.name}': option '{part}' must be "
                              "a spec name, BACKEND:SOURCE, a spec file or a spec table")
    out = spec.model_copy(update={"options": options})
    check(out)
    return out


def check(spec: ModelSpec) -> None:
    """Refuse a composite spec before anything runs (one line naming the problem)."""
    from tinmen.models.registry import BACKENDS

    parts = constituent_specs(spec)
    for part, sub in parts.items():
        if sub.backend in COMPOSITES:
            raise ConfigError(f"{spec.backend} spec '{spec.name}': its {part} is itself "
                              f"composite ({sub.backend}); nest by role, not by spec")
        if sub.backend not in BACKENDS and ":" not in sub.backend:
            raise ConfigError(f"{spec.backend} spec '{spec.name}': unknown backend "
                              f"'{sub.backend}' for its {part}; use one of "
                              f"{', '.join(BACKENDS.names())}")
    base = parts.get("base")
    if base is not None and base.backend not in TOP1_BACKENDS and ":" not in base.backend:
        raise ConfigError(f"nudged spec '{spec.name}': its base backend '{base.backend}' "
                          "returns no top-1 log-probs; use one of "
                          f"{', '.join(sorted(TOP1_BACKENDS))}")


# --------------------------------------------------------------------------- prompts
def render(prompt: Prompt, template: str) -> str:
    """The constituent's prompt as text that its answer continues."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if template == "raw":
        return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    if template == "chatml":
        turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
                        for m in messages)
        return turns + "<|im_start|>assistant\n"
    if template == "plain":
        if isinstance(prompt, str):
            return prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return template.format(prompt=users[-1] if users else "")


def token_starts(text: str, tokens: Sequence[str]) -> list[int] | None:
    """Where each token begins in ``text`` (None where the tokens do not spell it)."""
    starts, pos = [], 0
    for tok in tokens:
        found = text.find(tok, pos) if tok else pos
        if found < 0:
            return None
        starts.append(found)
        pos = found + len(tok)
    return starts


def first_word(text: str) -> str:
    """Leading whitespace and the word after it: the Nudging span."""
    match = re.match(r"\s*\S+", text)
    return match.group(0) if match else ""


# --------------------------------------------------------------------------- contract
class Constituents(Protocol):
    """How a composite reaches its two models, and where its handoffs go."""

    def generate(self, part: str, prompt: Prompt, params: GenerateParams) -> Generation: ...
    def score(self, part: str, prompt: Prompt, options: Sequence[str]) -> list[float]: ...
    def call_index(self, part: str) -> int | None: ...
    def handoff(self, kind: str, *, options: list[dict[str, Any]], chosen: dict[str, Any],
                uncertainty: float | None, rationale: str) -> None: ...


class _Draft:
    """The answer being written: text, tokens with their writer's log-probs."""

    def __init__(self, join: str) -> None:
        self.join = join
        self.text = ""
        self.tokens: list[str] = []
        self.lps: list[float] = []
        self.top1: list[float] = []
        self.topk: list[tuple[float, ...]] | None = []
        self.writers: list[str] = []

    def add(self, piece: str, gen: Generation, n: int, writer: str) -> None:
        if (self.join == "space" and self.text and piece and not piece[0].isspace()
                and not self.text[-1].isspace()):
            piece = " " + piece
        self.text += piece
        self.tokens += gen.tokens[:n]
        self.lps += list((gen.token_logprobs or ())[:n])
        self.top1 += list((gen.top1_logprobs or ())[:n])
        if self.topk is not None and gen.topk_logprobs is not None:
            self.topk += list(gen.topk_logprobs[:n])
        else:
            self.topk = None
        self.writers += [writer] * n

    def result(self, finish: str) -> tuple[Generation, dict[str, Any]]:
        gen = Generation(text=self.text, tokens=tuple(self.tokens),
                         token_logprobs=tuple(self.lps), top1_logprobs=tuple(self.top1),
                         finish_reason=finish,
                         topk_logprobs=None if self.topk is None else tuple(self.topk))
        return gen, {"writers": list(self.writers)}


def _join_of(opts: _Options, parts: Mapping[str, ModelSpec]) -> str:
    if opts.join != "auto":
        return opts.join
    return "space" if all(p.backend == "scripted" for p in parts.values()) else "concat"


class Nudged:
    """Nudging over two constituents; see the module docstring."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.opts = options_of(spec)
        assert isinstance(self.opts, NudgedOptions)
        self.parts = constituent_specs(spec)

    def _prompt(self, part: str, prompt: Prompt, written: str) -> str:
        return render(prompt, self.opts.templates.get(part, "plain")) + written

    def generate(self, via: Constituents, prompt: Prompt, params: GenerateParams
                 ) -> tuple[Generation, dict[str, Any]]:
        opts = self.opts
        assert isinstance(opts, NudgedOptions)
        draft, budget = _Draft(_join_of(opts, self.parts)), params.max_new_tokens
        finish = "length"  # unless a model ends the answer first
        while budget > 0:
            chunk = params.model_copy(update={"max_new_tokens": min(opts.chunk_tokens, budget)})
            gen = via.generate("base", self._prompt("base", prompt, draft.text), chunk)
            if gen.top1_logprobs is None:
                raise ConfigError(f"nudged spec '{self.spec.name}': its base model returned no "
                                  "top-1 log-probs; serve it with log-probs or bind another")
            low = [i for i, lp in enumerate(gen.top1_logprobs) if math.exp(lp) < opts.gamma]
            if not low:
                draft.add(gen.text, gen, len(gen.tokens), "base")
                budget -= max(len(gen.tokens), 1)
                if gen.finish_reason != "length" or not gen.tokens:
                    finish = gen.finish_reason
                    break
                continue
            cut = low[0]
            starts = token_starts(gen.text, gen.tokens)
            kept = gen.text[:starts[cut]] if starts else "".join(gen.tokens[:cut])
            draft.add(kept, gen, cut, "base")
            budget -= cut
            if budget <= 0:
                break
            p_base = math.exp(gen.top1_logprobs[cut])
            span, used = self._nudge(via, prompt, draft, params, min(opts.span_tokens, budget))
            via.handoff("handoff", options=[{"option": "base", "score": p_base},
                                            {"option": "aligned", "score": opts.gamma}],
                        chosen={"writer": "aligned", "span": span, "tokens": used,
                                "position": len(draft.tokens) - used,
                                "base_token": gen.tokens[cut], "base_top1": p_base,
                                "gamma": opts.gamma, "base_call": via.call_index("base"),
                                "aligned_call": via.call_index("aligned")},
                        uncertainty=p_base,
                        rationale=f"base top-1 p={p_base:.3f} < gamma={opts.gamma}: "
                                  f"aligned wrote {span!r}")
            budget -= max(used, 1)
            if not span:  # the aligned model ended the answer
                finish = "stop"
                break
        gen_out, extra = draft.result(finish)
        return gen_out, extra

    def _nudge(self, via: Constituents, prompt: Prompt, draft: _Draft,
               params: GenerateParams, limit: int) -> tuple[str, int]:
        """Let the aligned model write one span; returns (span, tokens used)."""
        gen = via.generate("aligned", self._prompt("aligned", prompt, draft.text),
                           params.model_copy(update={"max_new_tokens": limit}))
        if not gen.tokens or not gen.text.strip():
            return "", 0
        if self.opts.span == "token":  # type: ignore[union-attr]
            starts = token_starts(gen.text, gen.tokens)
            span = gen.text[:starts[1]] if starts and len(starts) > 1 else gen.tokens[0]
            draft.add(span, gen, 1, "aligned")
            return span, 1
        span = first_word(gen.text)
        starts = token_starts(gen.text, gen.tokens) or []
        used = sum(1 for s in starts if s < len(span)) or 1
        draft.add(span, gen, used, "aligned")
        return span, used

    def score(self, via: Constituents, prompt: Prompt, options: Sequence[str]) -> list[float]:
        part = self.opts.score_by  # type: ignore[union-attr]
        return via.score(part, self._prompt(part, prompt, ""), options)


def deferral_score(rule: str, gen: Generation, quantile: float = 0.8) -> float:
    """The cascade's deferral score of one answer (higher = less sure)."""
    lps = list(gen.token_logprobs or ())
    if not lps:
        return math.inf if gen.token_logprobs is None else 0.0
    if rule == "seq-nll":
        return -sum(lps)
    if rule == "mean-nll":
        return -sum(lps) / len(lps)
    if rule == "chow-quantile":
        return chow_quantile(lps, quantile)
    if rule == "top1-min":
        return 1.0 - min(math.exp(x) for x in (gen.top1_logprobs or lps))
    raise ConfigError(f"unknown deferral rule '{rule}'; use one of {', '.join(RULES)}")


class Cascade:
    """A two-model cascade; see the module docstring."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.opts = options_of(spec)
        assert isinstance(self.opts, CascadeOptions)
        self.parts = constituent_specs(spec)

    def _prompt(self, part: str, prompt: Prompt) -> str:
        return render(prompt, self.opts.templates.get(part, "plain"))

    def generate(self, via: Constituents, prompt: Prompt, params: GenerateParams
                 ) -> tuple[Generation, dict[str, Any]]:
        opts = self.opts
        assert isinstance(opts, CascadeOptions)
        small = via.generate("small", self._prompt("small", prompt), params)
        score = deferral_score(opts.rule, small, opts.quantile)
        defer = score > opts.threshold
        answer = via.generate("large", self._prompt("large", prompt), params) if defer else small
        writer = "large" if defer else "small"
        shown = score if math.isfinite(score) else None
        via.handoff("deferral", options=[{"option": "small", "score": shown},
                                         {"option": "large", "score": opts.threshold}],
                    chosen={"writer": writer, "rule": opts.rule, "score": shown,
                            "threshold": opts.threshold, "small_call": via.call_index("small"),
                            "large_call": via.call_index("large") if defer else None},
                    uncertainty=shown,
                    rationale=f"{opts.rule} {score:.3f} {'>' if defer else '<='} "
                              f"threshold {opts.threshold}: {writer} answers")
        return answer, {"writers": [writer] * len(answer.tokens), "deferred": defer}

    def score(self, via: Constituents, prompt: Prompt, options: Sequence[str]) -> list[float]:
        opts = self.opts
        assert isinstance(opts, CascadeOptions)
        scores = via.score("small", self._prompt("small", prompt), options)
        top = max(option_probs(scores) or [1.0])
        if top >= opts.choice_top1:
            return scores
        large = via.score("large", self._prompt("large", prompt), options)
        via.handoff("deferral", options=[{"option": "small", "score": top},
                                         {"option": "large", "score": opts.choice_top1}],
                    chosen={"writer": "large", "rule": "choice-top1", "score": top,
                            "threshold": opts.choice_top1,
                            "small_call": via.call_index("small"),
                            "large_call": via.call_index("large")},
                    uncertainty=top, rationale=f"top option p={top:.3f} < "
                                               f"{opts.choice_top1}: large scores")
        return large


def algorithm(spec: ModelSpec) -> Nudged | Cascade:
    return Nudged(spec) if spec.backend == "nudged" else Cascade(spec)


# --------------------------------------------------------------------------- pool level
class PoolConstituents:
    """Constituents served straight by a pool (no recorder): a composite loaded as a
    backend. Seeds derive from the request's seed and the part's call count."""

    def __init__(self, pool: Any, parts: Mapping[str, ModelSpec], seed: int) -> None:
        self.pool, self.parts, self.seed = pool, parts, seed
        self.counts: dict[str, int] = {}
        self.handoffs: list[dict[str, Any]] = []

    def _seed(self, part: str) -> int:
        from tinmen.models.client import derive_seed

        n = self.counts.get(part, 0)
        self.counts[part] = n + 1
        return derive_seed(self.seed, part, n)

    def generate(self, part: str, prompt: Prompt, params: GenerateParams) -> Generation:
        out, _, _ = self.pool.serve(self.parts[part], "generate", params.model_dump(mode="json"),
                                    {"prompt": prompt}, self._seed(part))
        return Generation.from_json(out)

    def score(self, part: str, prompt: Prompt, options: Sequence[str]) -> list[float]:
        out, _, _ = self.pool.serve(self.parts[part], "score", {},
                                    {"prompt": prompt, "options": list(options)},
                                    self._seed(part))
        return [float(x) for x in out]

    def call_index(self, part: str) -> int | None:
        n = self.counts.get(part)
        return None if n is None else n - 1

    def handoff(self, kind: str, **row: Any) -> None:
        self.handoffs.append({"kind": kind, **row})


class CompositeLM:
    """A composite spec loaded by a pool: a TextGenerator whose constituents that pool
    serves. Sessions never reach it (``Models`` runs composites itself, recorded)."""

    uses_pool = True  # ModelPool passes itself to from_spec

    def __init__(self, spec: ModelSpec, pool: Any) -> None:
        self.spec, self.pool = spec, pool
        self.algorithm = algorithm(spec)
        self.last_handoffs: list[dict[str, Any]] = []

    @classmethod
    def from_spec(cls, spec: ModelSpec, pool: Any = None) -> CompositeLM:
        check(spec)
        if pool is None:
            from tinmen.models.pool import ModelPool

            pool = ModelPool()
        return cls(spec, pool)

    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        out = []
        self.last_handoffs = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            via = PoolConstituents(self.pool, self.algorithm.parts, seed)
            out.append(self.algorithm.generate(via, prompt, params)[0])
            self.last_handoffs += via.handoffs
        return out

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        via = PoolConstituents(self.pool, self.algorithm.parts, 0)
        return self.algorithm.score(via, prompt, options)

    def nbytes(self) -> int:
        return 1024  # the constituents are the pool's own entries

    def device(self) -> str:
        return "cpu"

    def to_device(self, device: str) -> None:
        return None

    def close(self) -> None:
        return None
