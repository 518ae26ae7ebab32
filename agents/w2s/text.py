"""The text ladder: frozen features of a causal LM cut after its first k layers.

A rung ``"8"`` of the ladder is the LM truncated to its first 8 transformer layers; its
features are the hidden states after layer 8, mean-pooled over the request's tokens. The
output of layer k does not depend on the layers after it, so one forward pass with
``output_hidden_states`` yields every rung at once (``hidden_states[k]``; the last entry
carries the model's final norm). The model and tokenizer are handed in ready — graph nodes
take them from the shared pool.

Rungs may also name another model (``"SPEC"`` = its last layer, ``"SPEC@k"`` = layer k), so
users can plug in real ladders (GPT-2 sizes, Qwen sizes) by spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class TextRung:
    """A rung of the text ladder: which model (``None`` = the ``lm`` role) and which layer."""

    name: str
    spec: str | None
    layer: int | None  # None = the model's last layer


def parse_rung(text: str) -> TextRung:
    """``"8"`` → layer 8 of the bound LM; ``"gpt2"`` → its last layer; ``"gpt2@6"``."""
    spec, sep, layer = text.partition("@")
    if text.isdigit():
        return TextRung(name=f"L{int(text)}", spec=None, layer=int(text))
    if sep and not layer.isdigit():
        raise ValueError(f"text rung '{text}': the part after @ must be a layer number")
    return TextRung(name=text, spec=spec, layer=int(layer) if sep else None)


def hidden_features(model: Any, tokenizer: Any, texts: Sequence[str], layers: Sequence[int | None],
                    *, batch_size: int = 16) -> dict[int | None, np.ndarray]:
    """Mean-pooled hidden states after each of ``layers`` (None = last) for every text."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    depth = model.config.num_hidden_layers
    for layer in layers:
        if layer is not None and not 0 <= layer <= depth:
            raise ValueError(f"layer {layer} is outside the model's 0..{depth} layers")
    chunks: dict[int | None, list[np.ndarray]] = {layer: [] for layer in layers}
    device = next(model.parameters()).device
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt",
                        padding=True).to(device)
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states
        mask = enc["attention_mask"].unsqueeze(-1).float()
        for layer in layers:
            h = states[depth if layer is None else layer].float()
            pooled = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            chunks[layer].append(pooled.cpu().numpy())
    return {layer: np.concatenate(parts) for layer, parts in chunks.items()}
