"""The text ladder: frozen features of a causal LM cut after its first k layers.

A rung ``"8"`` of the ladder is the LM truncated to its first 8 transformer layers; its
features are the hidden states after layer 8, mean-pooled over the request's tokens. The
forward pass is a recorded model call (``models.hidden_states``, computed by the backend in
``tinmen.models.hidden``); this module only names the rungs.

Rungs may also name another model (``"SPEC"`` = its last layer, ``"SPEC@k"`` = layer k), so
users can plug in real ladders (GPT-2 sizes, Qwen sizes) by spec.
"""

from __future__ import annotations

from dataclasses import dataclass


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
