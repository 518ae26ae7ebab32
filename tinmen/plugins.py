"""One registry mechanism for everything tinmen finds by name: agents, backends, named model
specs and scripted policies.

A :class:`Registry` is immutable: its built-in names map to ``"module:ATTR"`` strings and
nothing is imported until a name is looked up. Installed packages add names through a
Python entry-point group (``tinmen.agents``, ``tinmen.backends``, ``tinmen.specs``,
``tinmen.policies``), read at look-up time, so there is no registration call and no state
that an import could change. Where a registry accepts references, a user's own object is
named directly: ``path/to/file.py:ATTR`` (a file in the user's project) or
``package.module:ATTR``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from tinmen.errors import ConfigError

USER_MODULE_PREFIX = "tinmen_user_"  # modules imported from a user's FILE.py


def is_reference(text: str) -> bool:
    """``file.py:ATTR`` or ``package.module:ATTR`` (a name has no colon)."""
    module, sep, attr = text.rpartition(":")
    return bool(sep and module and attr.isidentifier())


def load_reference(ref: str, *, what: str = "object") -> Any:
    """Import ``file.py:ATTR`` or ``module:ATTR``; a failure is one line naming ``ref``."""
    if not is_reference(ref):
        raise ConfigError(f"'{ref}' is not an import path; use FILE.py:ATTR or module:ATTR")
    target, _, attr = ref.rpartition(":")
    try:
        module = _import_file(target) if target.endswith(".py") else \
            importlib.import_module(target)
    except ConfigError:
        raise
    except Exception as exc:  # the user's code failed to import: say where, keep the cause
        raise ConfigError(f"cannot import the {what} '{ref}': {type(exc).__name__}: "
                          f"{exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"cannot import the {what} '{ref}': {target} has no attribute "
                          f"'{attr}'") from None


def _import_file(path_text: str) -> ModuleType:
    """Import a user's ``.py`` file once per process under a name derived from its path.

    ``sys.modules`` is Python's own import cache, not ours: a second look-up of the same file
    returns the same module, so a definition keeps its identity across replay and fork.
    """
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"no such file '{path_text}' (relative paths are resolved from the "
                          f"current directory, {Path.cwd()})")
    name = USER_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import '{path_text}' as Python source")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@dataclass(frozen=True)
class Registry:
    """Names of one kind of plug-in; see the module docstring."""

    kind: str  # "agent", "backend", "model spec", "scripted policy" (for messages)
    group: str  # entry-point group third-party packages register in
    builtins: Mapping[str, str]  # name -> "module:ATTR"

    def __post_init__(self) -> None:
        object.__setattr__(self, "builtins", MappingProxyType(dict(self.builtins)))

    def _installed(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def targets(self) -> dict[str, str]:
        """Every known name and its ``module:ATTR`` (built-ins win over installed ones)."""
        return {**self._installed(), **self.builtins}

    def names(self) -> list[str]:
        return sorted(self.targets())

    def target(self, name: str) -> str | None:
        return self.builtins.get(name) or self._installed().get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.target(name) is not None

    def load(self, name: str, *, references: bool = False) -> Any:
        """The object registered as ``name`` (or, with ``references``, an import path)."""
        target = self.target(name)
        if target is None:
            if references and is_reference(name):
                return load_reference(name, what=self.kind)
            hint = " (or FILE.py:ATTR / module:ATTR)" if references else ""
            raise ConfigError(f"unknown {self.kind} '{name}'; known: "
                              f"{', '.join(self.names()) or 'none'}{hint}")
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
