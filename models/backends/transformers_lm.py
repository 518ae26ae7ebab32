"""``transformers-lm``: any causal LM that ``AutoModelForCausalLM`` loads from a local dir,
a cached hub id, or a GGUF file (e.g. the packaged SmolLM2-135M-Instruct).

GGUF weights are de-quantised once and cached as an ordinary HF directory under
``TINMEN_CACHE/converted/`` (written to a temp dir and renamed, so an interrupted conversion
never leaves a broken cache); later loads take about a second.

Generation is a small decode loop of our own rather than ``model.generate`` so that every
prompt in a batch samples from its own seeded ``torch.Generator``: a request's output does
not depend on which other requests it was batched with.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinmen.models.protocols import GenerateParams, Generation, Prompt
from tinmen.models.registry import missing_dependency
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.config import cache_dir
from tinmen.errors import ConfigError

try:
    import torch
    import transformers
except ModuleNotFoundError as exc:  # pragma: no cover - torch/transformers are dependencies
    raise missing_dependency(exc.name or "transformers", "backend 'transformers-lm'") from exc

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "auto": "auto"}


def pick_device(preference: str) -> str:
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{preference}' requested but no CUDA GPU is available; "
                          "use device = 'auto' or 'cpu'")
    return preference


def converted_gguf(path: Path) -> Path:
    """An HF directory holding the de-quantised weights of GGUF file ``path`` (cached)."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.name}:{stat.st_size}".encode()).hexdigest()[:16]
    target = cache_dir() / "converted" / f"{path.stem}-{key}"
    if (target / "config.json").exists():
        return target
    try:
        import gguf  # noqa: F401
    except ModuleNotFoundError as exc:
        raise missing_dependency("gguf", f"loading {path.name}") from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    quantised = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                     dtype=torch.float32)
    # transformers refuses to save a gguf-loaded model: rebuild it plainly, then save
    config = quantised.config.to_dict()
    config.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(quantised.config).from_dict(config))
    plain.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


class TorchModuleBackend:
    """Backend bookkeeping shared by backends that hold one torch module in ``self.model``."""

    model: Any
    _device: str

    def nbytes(self) -> int:
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        seen = {t.data_ptr(): t.numel() * t.element_size() for t in tensors}
        return int(sum(seen.values()))

    def device(self) -> str:
        return self._device

    def to_device(self, device: str) -> None:
        self.model.to(device)
        self._device = device

    def close(self) -> None:
        self.model = None


class TransformersLM(TorchModuleBackend):
    """Text generation with per-token log-probs and continuation scoring."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._device = device
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = _eos_ids(model, tokenizer)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> TransformersLM:
        source = resolve_source(spec.source)
        if isinstance(source, Path) and source.suffix == ".gguf":
            source = converted_gguf(source)
        local = {"local_files_only": True}
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source, **local)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=DTYPES[spec.dtype], **local, **spec.options.get("load", {}))
        except OSError as exc:
            raise ConfigError(f"cannot load model '{spec.name}' from {source}: not a local "
                              "model directory or a hub id in the local cache (tinmen never "
                              "downloads)") from exc
        device = pick_device(spec.device)
        return cls(model.to(device), tok, device)

    # -- prompts ----------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(prompt, tokenize=False,
                                                      add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in prompt) + "\nassistant:"

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # -- TextGenerator ----------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        if params.json_schema is not None:
            from tinmen.models.backends.constrained import schema_processor

            processor = schema_processor(self.tokenizer, params.json_schema, len(prompts),
                                         self.model.config.vocab_size)
        else:
            processor = None
        encoded = [self._encode(self.render(p)) for p in prompts]
        ids, mask = _left_pad(encoded, self.tokenizer.pad_token_id, self._device)
        gens = [torch.Generator().manual_seed(int(s) % 2**63) for s in seeds]
        rows = [_Row() for _ in prompts]
        past, step_ids, positions = None, ids, mask.long().cumsum(-1) - 1
        positions = positions.clamp(min=0)
        for _ in range(params.max_new_tokens):
            out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                             cache=past, use_cache=True)
            past = out.cache
            logits = out.logits[:, -1, :].float().cpu()
            logprobs = torch.log_softmax(logits, dim=-1)
            if processor is not None:  # mask tokens that would break the schema
                logits = processor(ids.cpu(), logits)
            chosen = [self._pick(logits[i], params, gens[i]) for i in range(len(rows))]
            for i, row in enumerate(rows):
                if not row.done:
                    self._advance(row, chosen[i], logprobs[i], params)
            if all(r.done for r in rows):
                break
            nxt = torch.tensor([[r.last] for r in rows], device=self._device)
            ids = torch.cat([ids, nxt], dim=1)
            step_ids = nxt
            mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
            positions = positions[:, -1:] + 1
        return [r.result(self.tokenizer, params) for r in rows]

    @staticmethod
    def _pick(logits: torch.Tensor, params: GenerateParams, gen: torch.Generator) -> int:
        if params.greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < params.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs, 1, generator=gen))

    def _advance(self, row: _Row, token: int, logprobs: torch.Tensor,
                 params: GenerateParams) -> None:
        row.last = token
        if token in self.eos_ids:
            row.done = True
            return
        row.ids.append(token)
        row.logprobs.append(float(logprobs[token]))
        row.top1.append(float(logprobs.max()))
        if params.stop:
            text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
            row.done = any(s in text for s in params.stop)
        if not row.done and len(row.ids) >= params.max_new_tokens:
            row.finish = "length"

    @torch.inference_mode()
    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Sum of log-probs of each option's tokens after the (templated) prompt."""
        prefix = self._encode(self.render(prompt))
        conts = [self._encode(o) for o in options]
        if any(not c for c in conts):
            raise ConfigError("score() options must be non-empty strings")
        seqs = [prefix + c for c in conts]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self._device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs],
                            device=self._device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits.float().cpu()
        logprobs = torch.log_softmax(logits, dim=-1)
        scores = []
        for i, cont in enumerate(conts):
            start = len(prefix)
            total = sum(float(logprobs[i, start + j - 1, tok]) for j, tok in enumerate(cont))
            scores.append(total)
        return scores


class _Row:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.top1: list[float] = []
        self.done = False
        self.finish = "stop"
        self.last = 0

    def result(self, tokenizer: Any, params: GenerateParams) -> Generation:
        text = tokenizer.decode(self.ids, skip_special_tokens=True)
        ids, lps, top1 = self.ids, self.logprobs, self.top1
        for stop in params.stop:
            if stop in text:
                text = text[: text.index(stop)]
        if not self.done and len(ids) >= params.max_new_tokens:
            self.finish = "length"
        tokens = tuple(tokenizer.decode([t]) for t in ids)
        return Generation(text=text, tokens=tokens, token_logprobs=tuple(lps),
                          top1_logprobs=tuple(top1), finish_reason=self.finish)


def _left_pad(seqs: list[list[int]], pad: int, device: str) -> tuple[Any, Any]:
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return ids, mask


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    found = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in \
        tokenizer.get_vocab() else None
    found.add(im_end)
    return {i for i in found if i is not None}
