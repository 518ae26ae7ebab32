"""``transformers-lm``: any causal LM that ``AutoModelForCausalLM`` loads from a local dir,
a cached hub id, or a GGUF file (e.g. the packaged SmolLM2-135M-Instruct).

GGUF weights are de-quantised once and cached as an ordinary HF directory under
``TINMEN_CACHE/converted/`` (written to a temp dir and renamed, so an interrupted conversion
never leaves a broken cache); later loads take about a second.

Generation is a decode loop of our own rather than ``model.generate`` (see ``lm_batch``):
every prompt samples from its own seeded ``torch.Generator``, so a request's output does not
depend on which other requests it was batched with, and requests can join a running batch
between decode steps (the pool's continuous batching).
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
from tinmen.models.remote_code import code_options, load_options
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.config import cache_dir
from tinmen.errors import ConfigError

try:
    import torch
    import transformers
except ModuleNotFoundError as exc:  # pragma: no cover - torch/transformers are dependencies
    raise missing_dependency(exc.name or "transformers", "backend 'transformers-lm'") from exc

from tinmen.models.backends.lm_batch import PREFILL_TOKENS, RunningBatch, left_pad  # noqa: E402

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
        weights, code = load_options(spec), code_options(spec)  # no folder code, no pickles
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source, **local, **code)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=DTYPES[spec.dtype], **local, **weights)
        except OSError as exc:
            raise ConfigError(f"cannot load model '{spec.name}' from {source}: not a local "
                              "model directory or a hub id in the local cache (tinmen never "
                              "downloads)") from exc
        device = pick_device(spec.device)
        # transformers wraps PreTrainedModel.to with functools.wraps, so its stub loses self
        return cls(model.to(device), tok, device)  # type: ignore[arg-type]

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
    def decode_batch(self) -> RunningBatch:
        """A running batch that requests join between decode steps (continuous batching)."""
        return RunningBatch(self)

    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        batch = self.decode_batch()
        done = dict(batch.add([(i, p, params, s) for i, (p, s) in
                               enumerate(zip(prompts, seeds, strict=True))]))
        while batch.size:
            done.update(batch.step())
        return [done[i] for i in range(len(prompts))]

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Sum of log-probs of each option's tokens after the (templated) prompt."""
        return self.score_batch([prompt], [options])[0]

    def hidden_states(self, texts: Sequence[str], layers: Sequence[int | None],
                      batch_size: int = 16) -> Any:
        """HiddenStates: mean-pooled states after each layer (``models/hidden.py``)."""
        from tinmen.models.hidden import mean_pooled_states

        return mean_pooled_states(self.model, self.tokenizer, texts, layers,
                                  batch_size=batch_size)

    @torch.inference_mode()
    def score_batch(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        """``score`` for many requests at once (the pool batches concurrent sessions' calls).

        Each prompt is run once and its KV cache is shared by all of its options: a
        forward over the prompts (left-padded, so each prompt's last logits sit in the last
        column), then one over the options' tokens (right-padded after the prompt). Padding
        is masked and positions count real tokens only, so scores equal unpadded ones."""
        requests = []
        for prompt, opts in zip(prompts, options, strict=True):
            prefix, conts = self._encode(self.render(prompt)), [self._encode(o) for o in opts]
            if not prefix or any(not c for c in conts):
                raise ConfigError("score() needs a non-empty prompt and non-empty options")
            requests.append((prefix, conts))
        scores: list[list[float]] = []
        for chunk in _score_chunks(requests):
            scores += self._score_chunk(chunk)
        return scores

    def _score_chunk(self, chunk: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        pad, device = self.tokenizer.pad_token_id, self._device
        ids, mask = left_pad([prefix for prefix, _ in chunk], pad, device)
        cache = transformers.DynamicCache()
        out = self.model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True,
                         position_ids=(mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1, :].float().cpu(), dim=-1)
        owner = [r for r, (_, conts) in enumerate(chunk) for _ in conts]
        conts = [c for _, cs in chunk for c in cs]
        rest = max(len(c) for c in conts) - 1  # option tokens after the first one
        if rest:
            cache.batch_select_indices(torch.tensor(owner, device=device))  # one row per option
            feed = torch.tensor([c[:-1] + [pad] * (rest + 1 - len(c)) for c in conts],
                                device=device)
            fed = torch.tensor([[1] * (len(c) - 1) + [0] * (rest + 1 - len(c)) for c in conts],
                               device=device)
            lengths = torch.tensor([len(chunk[r][0]) for r in owner], device=device)
            logits = self.model(input_ids=feed, attention_mask=torch.cat([mask[owner], fed], 1),
                                position_ids=lengths[:, None] + torch.arange(rest, device=device),
                                cache=cache, use_cache=True).logits.float().cpu()
            later = torch.log_softmax(logits, dim=-1)  # later[s, j] predicts token j + 1
        scores: list[list[float]] = [[] for _ in chunk]
        for s, (r, cont) in enumerate(zip(owner, conts, strict=True)):
            total = float(first[r, cont[0]])
            total += sum(float(later[s, j, tok]) for j, tok in enumerate(cont[1:]))
            scores[r].append(total)
        return scores


def _score_chunks(requests: list[tuple[list[int], list[list[int]]]],
                  budget: int = PREFILL_TOKENS) -> list[list[Any]]:
    """Groups of requests whose padded prompt and option tokens stay within budget."""
    groups: list[list[Any]] = [[]]
    for req in requests:
        group = groups[-1] + [req]
        prompts = len(group) * max(len(prefix) for prefix, _ in group)
        options = sum(len(cs) for _, cs in group) * max(len(c) for _, cs in group for c in cs)
        if groups[-1] and prompts + 4 * options > budget:  # option rows also keep all logits
            groups.append([req])
        else:
            groups[-1] = group
    return groups


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    found = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in \
        tokenizer.get_vocab() else None
    found.add(im_end)
    return {i for i in found if i is not None}
