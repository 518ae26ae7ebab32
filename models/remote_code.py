"""Loading a model never runs code from its folder unless the user allows it on this run.

A spec's ``options["load"]`` reaches ``from_pretrained``; ``trust_remote_code=True`` there
imports the model folder's Python files, and ``use_safetensors=False`` / ``weights_only=False``
let torch unpickle its weights (which runs code too). Specs come from files other people
write and from the bindings stored with a session (which ``tinmen fork`` / ``resume`` use
again), so such options are refused unless *this run* allows them: the caller passes
``ModelPool(allow_remote_code=True)`` (the CLI's ``--trust-remote-code``), which holds
:func:`remote_code_allowed` around each load. Nothing stored is ever read as permission.

Every backend builds its ``from_pretrained`` keyword arguments with :func:`load_options`
(models) and :func:`code_options` (tokenizers, processors, configs), which also pin the safe
defaults: safetensors only, no remote code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

_allowed: ContextVar[bool] = ContextVar("tinmen_remote_code_allowed", default=False)

# load option -> does this value run code from the model folder (or unpickle its files)?
CODE_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "trust_remote_code": bool,
    "code_revision": lambda v: v is not None,  # which revision of the folder's code to run
    "custom_pipeline": lambda v: v is not None,  # diffusers: a pipeline class from a .py
    "custom_revision": lambda v: v is not None,
    "use_safetensors": lambda v: v is not True,  # False/None allow pickled .bin weights
    "weights_only": lambda v: v is False,  # torch.load of arbitrary pickles
}
# arguments tinmen sets itself: a spec may not override them
RESERVED = frozenset({"local_files_only", "dtype", "pretrained_model_name_or_path"})
SAFE_DEFAULTS: dict[str, Any] = {"trust_remote_code": False, "use_safetensors": True}


@contextmanager
def remote_code_allowed(allowed: bool = True) -> Iterator[None]:
    """Within this block (this thread / task), loads may run model-folder code."""
    token = _allowed.set(bool(allowed))
    try:
        yield
    finally:
        _allowed.reset(token)


def is_remote_code_allowed() -> bool:
    return _allowed.get()


def load_options(spec: ModelSpec) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for the model weights of ``spec``: the safe
    defaults, then the spec's ``options["load"]`` once checked."""
    given = spec.options.get("load") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"model '{spec.name}': options.load must be a table of "
                          f"from_pretrained arguments, not {type(given).__name__}")
    reserved = sorted(RESERVED & set(given))
    if reserved:
        raise ConfigError(f"model '{spec.name}': load option {reserved[0]} is set by tinmen "
                          "(it never downloads, and the dtype is the spec's 'dtype' field); "
                          "remove it from options.load")
    if not is_remote_code_allowed():
        _refuse_code(spec, given)
    return {**SAFE_DEFAULTS, **given}


def code_options(spec: ModelSpec) -> dict[str, Any]:
    """``from_pretrained`` arguments for a tokenizer, processor or config of ``spec``: remote
    code only where the weights may use it too."""
    return {"trust_remote_code": bool(load_options(spec).get("trust_remote_code"))}


def _refuse_code(spec: ModelSpec, given: dict[str, Any]) -> None:
    for key, runs_code in CODE_OPTIONS.items():
        if key in given and runs_code(given[key]):
            raise ConfigError(
                f"model '{spec.name}' sets load option {key}={given[key]!r}, which runs code "
                "or unpickles files from the model folder; tinmen refuses it unless you "
                "allow it for this run with --trust-remote-code (Python: "
                "ModelPool(allow_remote_code=True)) — never from a spec or a stored session")
