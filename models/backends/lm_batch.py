"""The running batch of ``transformers-lm``: continuous batching over one padded KV cache.

A request joins between decode steps (its prompt is prefilled, then its cache rows are
merged in) and leaves as soon as it finishes; every row keeps its own parameters, its own
seeded ``torch.Generator`` and, for JSON-schema requests, its own grammar matcher, so its
output does not depend on its batch-mates. A one-prompt ``generate`` runs the same code with
a batch of one, which is why batched greedy outputs equal unbatched ones.

Why this loop and not transformers' own continuous batching (``generate_batch`` /
``init_continuous_batching`` / ``ContinuousBatchingManager``, transformers 5.24): it runs on
CPU, but it samples every request from the global torch RNG (``torch.multinomial`` without
a generator, one manager-wide seed) so a request's sample depends on what else is in the
batch; ``do_sample`` is manager-wide, and it returns only the chosen token's log-prob (no
top-1 log-prob, which the recorder stores). Those are the things replay needs.

Why one left-padded cache for the whole batch rather than a cache per sequence re-batched at
every step: on CPU a decode step costs the weight matmuls plus memory traffic, and
re-batching would gather every sequence's whole KV into a fresh padded tensor at every step.
Here the KV is rearranged only when the batch changes (join: left-pad and concatenate;
leave: select rows; columns that are padding for every row are trimmed), and each layer
keeps spare columns so a decode step writes its one new column in place (transformers'
``DynamicLayer`` re-allocates the whole cache by ``torch.cat`` at every step). Padding is
masked; each row's position ids count only its real tokens.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from tinmen.models.protocols import TOP_K, GenerateParams, Generation, Prompt
from transformers.cache_utils import DynamicCache, DynamicLayer

PREFILL_TOKENS = 4096  # padded prompt tokens per prefill forward (bounds activation memory)
SLACK = 64  # spare cache columns allocated per layer, so decode steps write in place


class _SlackLayer(DynamicLayer):
    """A ``DynamicLayer`` whose tensors are views of buffers with spare columns."""

    _k: torch.Tensor
    _v: torch.Tensor
    _n: int = 0  # columns in use

    def kv(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._k[:, :, : self._n], self._v[:, :, : self._n]

    def set(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.device, self.is_initialized = keys.device, True
        self._k, self._v, self._n = _with_slack(keys), _with_slack(values), keys.shape[2]
        self.keys, self.values = self.kv()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.set(key_states, value_states)
            return self.kv()
        n, m = self._n, key_states.shape[2]
        if n + m > self._k.shape[2]:
            self.set(*self.kv())  # re-allocate with fresh slack
        self._k[:, :, n:n + m] = key_states
        self._v[:, :, n:n + m] = value_states
        self._n = n + m
        self.keys, self.values = self.kv()
        return self.kv()


def _with_slack(t: torch.Tensor) -> torch.Tensor:
    b, h, n, d = t.shape
    buf = t.new_empty((b, h, n + SLACK, d))
    buf[:, :, :n] = t
    return buf


def _new_cache(n_layers: int) -> DynamicCache:
    cache = DynamicCache()
    cache.layers = [_SlackLayer() for _ in range(n_layers)]
    return cache


def _layers(cache: DynamicCache) -> list[_SlackLayer]:
    return cast("list[_SlackLayer]", cache.layers)


@dataclass
class _Row:
    """One sequence in the batch: its request, decoding state and what it produced."""

    key: Hashable
    params: GenerateParams
    gen: torch.Generator
    processor: Any = None  # per-row grammar processor (JSON-schema requests)
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    topk: list[tuple[float, ...]] = field(default_factory=list)  # TOP_K largest per token
    length: int = 0  # real (unpadded) tokens in the cache: the next position id
    last: int = 0
    done: bool = False
    finish: str = "stop"

    def result(self, tokenizer: Any) -> Generation:
        text = tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.params.stop:
            if stop in text:
                text = text[: text.index(stop)]
        tokens = tuple(tokenizer.decode([t]) for t in self.ids)
        return Generation(text=text, tokens=tokens, token_logprobs=tuple(self.logprobs),
                          top1_logprobs=tuple(self.top1), finish_reason=self.finish,
                          topk_logprobs=tuple(self.topk))


class RunningBatch:
    """Sequences decoding together on one model; see the module docstring.

    ``add`` prefills new requests and merges them in; ``step`` runs one decode step for
    every row. Both return the ``(key, Generation)`` of the requests that finished.
    """

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.rows: list[_Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, columns] 1 = real token, 0 = padding

    @property
    def size(self) -> int:
        return len(self.rows)

    def keys(self) -> list[Hashable]:
        return [r.key for r in self.rows]

    @torch.inference_mode()
    def add(self, requests: Sequence[tuple[Hashable, Prompt, GenerateParams, int]]
            ) -> list[tuple[Hashable, Generation]]:
        finished: list[tuple[Hashable, Generation]] = []
        # rows (and their grammars) first: a bad request fails before the batch changes
        encoded = [(self._row(key, params, seed), self.lm._encode(self.lm.render(prompt)))
                   for key, prompt, params, seed in requests]
        for chunk in _chunks(encoded, PREFILL_TOKENS):
            rows = [row for row, _ in chunk]
            ids, mask = left_pad([e for _, e in chunk], self.lm.tokenizer.pad_token_id,
                                  self.lm.device())
            cache = _new_cache(self.lm.model.config.num_hidden_layers)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.lm.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                cache=cache, use_cache=True, logits_to_keep=1)
            for row, e in zip(rows, chunk, strict=True):
                row.length = len(e[1])
            self._decide(rows, out.logits[:, -1, :])
            keep = [i for i, r in enumerate(rows) if not r.done]
            finished += [(r.key, r.result(self.lm.tokenizer)) for r in rows if r.done]
            if keep:
                if len(keep) < len(rows):
                    cache, mask = _select(cache, keep), mask[keep]
                self._merge([rows[i] for i in keep], cache, mask)
        return finished

    @torch.inference_mode()
    def step(self) -> list[tuple[Hashable, Generation]]:
        if not self.rows or self.cache is None or self.mask is None:
            return []
        device = self.lm.device()
        nxt = torch.tensor([[r.last] for r in self.rows], device=device)
        self.mask = torch.cat([self.mask, torch.ones_like(nxt)], dim=1)
        positions = torch.tensor([[r.length] for r in self.rows], device=device)
        out = self.lm.model(input_ids=nxt, attention_mask=self.mask, position_ids=positions,
                            cache=self.cache, use_cache=True)
        for row in self.rows:
            row.length += 1
        self._decide(self.rows, out.logits[:, -1, :])
        done = [r for r in self.rows if r.done]
        if done:
            keep = [i for i, r in enumerate(self.rows) if not r.done]
            self.rows = [self.rows[i] for i in keep]
            self.cache = _select(self.cache, keep) if keep else None
            self.mask = self.mask[keep] if keep else None
            self._trim()
        return [(r.key, r.result(self.lm.tokenizer)) for r in done]

    # -- internals ----------------------------------------------------------------
    def _row(self, key: Hashable, params: GenerateParams, seed: int) -> _Row:
        processor = None
        if params.json_schema is not None:
            from tinmen.models.backends.constrained import schema_processor

            processor = schema_processor(self.lm.tokenizer, params.json_schema, 1,
                                         self.lm.model.config.vocab_size)
        return _Row(key=key, params=params, processor=processor,
                    gen=torch.Generator().manual_seed(int(seed) % 2**63))

    def _decide(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Pick each row's next token and record its log-prob and the top-1 log-prob."""
        logits = logits.float().cpu()
        logprobs = torch.log_softmax(logits, dim=-1)
        top1 = logprobs.max(dim=-1).values.tolist()
        topk = logprobs.topk(min(TOP_K, logprobs.shape[-1]), dim=-1).values.tolist()
        greedy = torch.argmax(logits, dim=-1).tolist()
        for i, row in enumerate(rows):
            row_logits = logits[i]
            if row.processor is not None:  # mask tokens that would break the schema
                row_logits = row.processor(torch.tensor([[row.last]]), logits[i:i + 1])[0]
            if row.params.greedy:
                token = greedy[i] if row.processor is None else int(torch.argmax(row_logits))
            else:
                token = _sample(row_logits, row.params, row.gen)
            self._advance(row, token, float(logprobs[i, token]), top1[i])
            if len(row.topk) < len(row.ids):  # the token was kept (not an end-of-sequence)
                row.topk.append(tuple(topk[i]))

    def _advance(self, row: _Row, token: int, logprob: float, top1: float) -> None:
        row.last = token
        if token in self.lm.eos_ids:
            row.done = True
            return
        row.ids.append(token)
        row.logprobs.append(logprob)
        row.top1.append(top1)
        if row.params.stop:
            text = self.lm.tokenizer.decode(row.ids, skip_special_tokens=True)
            row.done = any(s in text for s in row.params.stop)
        if not row.done and len(row.ids) >= row.params.max_new_tokens:
            row.done, row.finish = True, "length"

    def _merge(self, rows: list[_Row], cache: DynamicCache, mask: torch.Tensor) -> None:
        if self.cache is None:
            self.rows, self.cache, self.mask = rows, cache, mask
            return
        assert self.mask is not None
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(_layers(self.cache), _layers(cache), strict=True):
            (ok, ov), (nk, nv) = old.kv(), new.kv()
            old.set(torch.cat([_pad_left(ok, width), _pad_left(nk, width)]),
                    torch.cat([_pad_left(ov, width), _pad_left(nv, width)]))
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)])
        self.rows = self.rows + rows

    def _trim(self) -> None:
        """Drop leading columns that are padding for every row (left by finished rows)."""
        if self.mask is None or self.cache is None:
            return
        real = self.mask.any(dim=0).nonzero()
        start = int(real[0]) if len(real) else 0
        if start > 0:
            self.mask = self.mask[:, start:]
            for layer in _layers(self.cache):
                keys, values = layer.kv()
                layer.set(keys[:, :, start:], values[:, :, start:])


def _sample(logits: torch.Tensor, params: GenerateParams, gen: torch.Generator) -> int:
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < params.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=gen))


def _select(cache: DynamicCache, keep: list[int]) -> DynamicCache:
    layers = _layers(cache)
    index = torch.tensor(keep, device=layers[0].device)
    for layer in layers:
        keys, values = layer.kv()
        layer.set(keys.index_select(0, index), values.index_select(0, index))
    return cache


def _pad_left(t: torch.Tensor, width: int) -> torch.Tensor:
    """Pad the sequence axis (dim 2 of a KV tensor, dim 1 of a mask) on the left with zeros."""
    axis = 2 if t.dim() == 4 else 1
    missing = width - t.shape[axis]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)


def left_pad(seqs: list[list[int]], pad: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return ids, mask


def _chunks(items: list[tuple[Any, list[int]]], budget: int) -> list[list[Any]]:
    """Split prompts into groups whose padded size (rows x longest) stays within budget."""
    groups: list[list[Any]] = []
    for item in items:
        group = groups[-1] if groups else None
        if group is not None and (len(group) + 1) * max(
                len(item[1]), *(len(e) for _, e in group)) <= budget:
            group.append(item)
        else:
            groups.append([item])
    return groups
