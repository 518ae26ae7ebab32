"""Graphs known by name, so a stored session can be rebuilt for replay and forks."""

from __future__ import annotations

import importlib

from tinmen.graphs.runtime import GraphDef

from tinmen.errors import ConfigError

GRAPHS: dict[str, str] = {
    "example": "tinmen.graphs.example:GRAPH",
    "t2i": "tinmen.graphs.t2i:GRAPH",
    "shopper": "tinmen.graphs.shopper:GRAPH",
    "shopper-market": "tinmen.graphs.shopper:MARKET_GRAPH",
    "w2s": "tinmen.graphs.w2s:GRAPH",
    "judge": "tinmen.graphs.judge:GRAPH",
}


def get_graph(name: str) -> GraphDef:
    target = GRAPHS.get(name)
    if target is None:
        raise ConfigError(f"unknown graph '{name}'; known graphs: {', '.join(sorted(GRAPHS))}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
