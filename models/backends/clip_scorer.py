"""``clip-scorer``: CLIPScore of (image, text) pairs from any local CLIP checkpoint.

CLIPScore (Hessel et al., 2021) is ``w * max(cos(image, text), 0)`` with ``w = 2.5``; it is
what the text-to-image agent uses to check a picture against its belief. The folder holds a
``CLIPModel`` (or any model with ``get_text_features`` / ``get_image_features``) plus its
processor, or a tokenizer and an image processor saved side by side. Texts longer than the
text encoder's context are truncated, since agent scene descriptions can run long.

Options: ``weight`` (default 2.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tinmen.models.backends.transformers_lm import TorchModuleBackend, pick_device
from tinmen.models.registry import missing_dependency
from tinmen.models.remote_code import code_options, load_options
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

CLIPSCORE_WEIGHT = 2.5


def _features(output: Any) -> torch.Tensor:
    """Projected embeddings, whether a version returns a tensor or a model output."""
    if isinstance(output, torch.Tensor):
        return output
    for name in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise TypeError(f"cannot read embeddings from {type(output).__name__}")


class ClipScorer(TorchModuleBackend):
    """ImageTextScorer returning CLIPScore per pair; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any,
                 device: str = "cpu", weight: float = CLIPSCORE_WEIGHT) -> None:
        self.model = model.eval()
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self._device, self.weight = device, weight
        text_config = getattr(model.config, "text_config", model.config)
        self.max_length = int(getattr(text_config, "max_position_embeddings", 77))

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ClipScorer:
        try:
            import transformers
        except ModuleNotFoundError as exc:
            raise missing_dependency("transformers", f"backend '{spec.backend}'") from exc
        source = resolve_source(spec.source)
        local = {"local_files_only": True}
        weights, code = load_options(spec), code_options(spec)  # no folder code, no pickles
        try:
            model = transformers.AutoModel.from_pretrained(source, **local, **weights)
            tok = transformers.AutoTokenizer.from_pretrained(source, **local, **code)
            images = transformers.AutoImageProcessor.from_pretrained(source, **local, **code)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load CLIP scorer '{spec.name}' from {source}: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
        if not hasattr(model, "get_image_features"):
            raise ConfigError(f"model in {source} ({type(model).__name__}) is not a CLIP-style "
                              "dual encoder; clip-scorer needs get_image_features")
        device = pick_device(spec.device)
        weight = float(spec.options.get("weight", CLIPSCORE_WEIGHT))
        return cls(model.to(device), tok, images, device, weight)

    @torch.inference_mode()
    def cosines(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        """Cosine similarity of ``images[i]`` and ``texts[i]`` in the joint space."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not texts:
            return []
        tokens = self.tokenizer(list(texts), padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        pixels = self.image_processor([im.convert("RGB") for im in images],
                                      return_tensors="pt")["pixel_values"]
        text = _features(self.model.get_text_features(**tokens.to(self._device)))
        image = _features(self.model.get_image_features(pixel_values=pixels.to(
            self._device, self.model.dtype)))
        text = torch.nn.functional.normalize(text.float(), dim=-1)
        image = torch.nn.functional.normalize(image.float(), dim=-1)
        return (text * image).sum(-1).cpu().tolist()

    def score_image_text(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        return [self.weight * max(c, 0.0) for c in self.cosines(images, texts)]
