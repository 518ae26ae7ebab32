"""Hidden states of a causal LM as a recorded capability: the features and their blob.

``mean_pooled_states`` is the forward pass (hidden states after each asked layer,
mean-pooled over each text's tokens). The output of layer k does not depend on the layers
after it, so one pass with ``output_hidden_states`` yields every layer at once
(``hidden_states[k]``; the last entry carries the model's final norm; ``None`` = last).

The pool stores the result as one ``.npy`` blob (float32, shape layers × texts × width,
the dtype the features are computed in, so a replay hands training exactly the numbers a
live run did); :func:`npy_bytes` / :func:`from_npy` convert.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

Layer = int | None  # None = the model's last layer


def mean_pooled_states(model: Any, tokenizer: Any, texts: Sequence[str],
                       layers: Sequence[Layer], *, batch_size: int = 16) -> np.ndarray:
    """(len(layers), len(texts), width) float32: mean-pooled states after each layer."""
    import torch

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    depth = model.config.num_hidden_layers
    for layer in layers:
        if layer is not None and not 0 <= layer <= depth:
            raise ValueError(f"layer {layer} is outside the model's 0..{depth} layers")
    chunks: list[list[np.ndarray]] = [[] for _ in layers]
    device = next(model.parameters()).device
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt",
                        padding=True).to(device)
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states
        mask = enc["attention_mask"].unsqueeze(-1).float()
        for i, layer in enumerate(layers):
            h = states[depth if layer is None else layer].float()
            pooled = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            chunks[i].append(pooled.cpu().numpy())
    return np.stack([np.concatenate(parts) for parts in chunks]).astype(np.float32)


def npy_bytes(array: np.ndarray) -> bytes:
    """The array as ``.npy`` bytes (no pickle: ``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def from_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)
