"""What `tinmen models list` shows: named specs, whether their weights are present, and
(on request) what loading them costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinmen.models.pool import ModelPool
from tinmen.models.registry import BACKENDS, named_specs, resolve_spec
from tinmen.models.sources import resolve_source

from tinmen.errors import TinmenError


def describe_models(load: Sequence[str] = ()) -> dict[str, Any]:
    pool = ModelPool()
    specs = []
    for name in sorted(named_specs()):
        spec = resolve_spec(name)
        try:
            resolve_source(spec.source)
            available = "yes"
        except TinmenError as exc:
            available = f"no: {exc}"
        specs.append({"name": name, "backend": spec.backend, "source": spec.source,
                      "available": available})
    for name in load:
        spec = resolve_spec(name)
        with pool.acquire(spec):
            pass
        entry = next(e for e in pool.loaded() if e["key"] == spec.key)
        row = next((s for s in specs if s["name"] == name), None)
        if row is None:
            row = {"name": name, "backend": spec.backend, "source": spec.source,
                   "available": "yes"}
            specs.append(row)
        row.update(bytes=entry["bytes"], device=entry["device"])
    return {"specs": specs, "backends": BACKENDS.names()}
