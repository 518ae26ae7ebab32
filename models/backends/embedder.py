"""``sentence-embedder``: mean-pooled, L2-normalised sentence vectors from any encoder dir
(e.g. the packaged all-MiniLM-L6-v2), implemented on transformers directly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from tinmen.models.backends.transformers_lm import TorchModuleBackend, pick_device
from tinmen.models.remote_code import code_options, load_options
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError


class SentenceEmbedder(TorchModuleBackend):
    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu",
                 max_length: int = 256) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self._device, self.max_length = device, max_length

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> SentenceEmbedder:
        source = resolve_source(spec.source)
        local = {"local_files_only": True}
        weights, code = load_options(spec), code_options(spec)  # no folder code, no pickles
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source, **local, **code)
            model = transformers.AutoModel.from_pretrained(source, **local, **weights)
        except OSError as exc:
            raise ConfigError(f"cannot load embedder '{spec.name}' from {source}") from exc
        device = pick_device(spec.device)
        length = int(spec.options.get("max_length", 256))
        if isinstance(source, Path) and (source / "sentence_bert_config.json").exists():
            import json

            cfg = json.loads((source / "sentence_bert_config.json").read_text())
            length = int(cfg.get("max_seq_length", length))
        return cls(model.to(device), tok, device, length)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        batch = self.tokenizer(list(texts), padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt").to(self._device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().tolist()
