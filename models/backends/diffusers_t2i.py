"""``diffusers-t2i``: any local diffusers text-to-image pipeline as an ImageGenerator.

The source is a pipeline folder (``model_index.json`` + component folders) as written by
``save_pretrained``, a ``package:MODULE/DIR`` path, or a hub id already in the local cache;
nothing is downloaded. ``DiffusionPipeline`` picks the pipeline class from the folder, so
Stable Diffusion, SDXL, PixArt, SANA, ... load the same way.

Reproducibility: image ``i`` is drawn from a CPU ``torch.Generator`` seeded with
``seeds[i]``, so a seed gives the same starting noise on every machine and in every batch.

Options (spec ``options``, overridden per call by ``params``): ``num_inference_steps``
(default 20), ``guidance_scale``, ``height``, ``width``, ``negative_prompt``. Options the
loaded pipeline's ``__call__`` does not accept are dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from tinmen.models.backends.transformers_lm import pick_device
from tinmen.models.registry import missing_dependency
from tinmen.models.remote_code import load_options
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

CALL_OPTIONS = ("num_inference_steps", "guidance_scale", "height", "width", "negative_prompt")
DEFAULTS: dict[str, Any] = {"num_inference_steps": 20}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str, device: str) -> torch.dtype:
    """``auto`` = half precision on a GPU, float32 on the CPU (CPU half is slow)."""
    if name == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return DTYPES[name]


class DiffusersT2I:
    """ImageGenerator over a loaded ``DiffusionPipeline``; see the module docstring."""

    def __init__(self, pipe: Any, device: str = "cpu",
                 options: dict[str, Any] | None = None) -> None:
        self.pipe = pipe
        self._device = device
        self.options = {**DEFAULTS, **(options or {})}
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> DiffusersT2I:
        try:
            import diffusers
        except ModuleNotFoundError as exc:
            raise missing_dependency("diffusers", f"backend '{spec.backend}'") from exc
        source = resolve_source(spec.source)
        device = pick_device(spec.device)
        try:
            pipe = diffusers.DiffusionPipeline.from_pretrained(  # no folder code, no pickles
                source, local_files_only=True, dtype=torch_dtype(spec.dtype, device),
                **load_options(spec))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load diffusers pipeline '{spec.name}' from {source}: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
        options = {k: v for k, v in spec.options.items() if k in CALL_OPTIONS}
        return cls(pipe.to(device), device, options)

    def call_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        """Options merged with per-call params, limited to what this pipeline accepts."""
        merged = {**self.options, **{k: v for k, v in params.items() if k in CALL_OPTIONS}}
        if "size" in params:  # the renderer's square-size parameter
            merged.setdefault("height", int(params["size"]))
            merged.setdefault("width", int(params["size"]))
        accepted = inspect.signature(self.pipe.__call__).parameters
        return {k: v for k, v in merged.items() if k in accepted and v is not None}

    @torch.inference_mode()
    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int],
                        params: dict[str, Any]) -> list[Any]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        out = self.pipe(prompt=list(prompts), generator=generators, output_type="pil",
                        **self.call_kwargs(params))
        return list(out.images)

    def modules(self) -> list[torch.nn.Module]:
        components = getattr(self.pipe, "components", {}) or {}
        return [m for m in components.values() if isinstance(m, torch.nn.Module)]

    def nbytes(self) -> int:
        seen: dict[int, int] = {}
        for module in self.modules():
            for t in list(module.parameters()) + list(module.buffers()):
                seen[t.data_ptr()] = t.numel() * t.element_size()
        return int(sum(seen.values()))

    def device(self) -> str:
        return self._device

    def to_device(self, device: str) -> None:
        self.pipe.to(device)
        self._device = device

    def close(self) -> None:
        self.pipe = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
