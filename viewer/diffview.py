"""Two sessions side by side, step by step: beliefs, decisions and metrics of each, rows
that differ marked and the first divergence named; with the library's own list of
differences (graphs/replay.py ``diff_sessions``)."""

from __future__ import annotations

import json
from itertools import zip_longest
from typing import Any

from tinmen.graphs.replay import diff_sessions
from tinmen.storage import Store
from tinmen.viewer.detail import session_detail


def _short(value: Any, n: int = 60) -> str:
    if isinstance(value, dict) and "entities" in value:
        return f"graph of {len(value['entities'])} entities"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _side(step: dict[str, Any] | None) -> dict[str, Any] | None:
    """One step's comparable content and its display lines."""
    if step is None:
        return None
    beliefs = [(b["subject"], _key(b["value"]), _key(b["distribution"])) for b in step["beliefs"]]
    decisions = [(d["kind"], _key(d["chosen"]), _key(d["options"])) for d in step["decisions"]]
    metrics = [(m["name"], m["value"]) for m in step["metrics"]]
    return {"node": step["node"], "key": (step["node"], beliefs, decisions, metrics),
            "beliefs": [f"{b['subject']} = {_short(b['value'])}" for b in step["beliefs"]],
            "decisions": [f"{d['kind']} → {_short(d['chosen'])}" for d in step["decisions"]],
            "metrics": [f"{m['name']} = {_number(m['value'])}" for m in step["metrics"]]}


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def side_by_side(store: Store, a: str, b: str) -> dict[str, Any]:
    left, right = session_detail(store, a), session_detail(store, b)
    rows, first = [], None
    for sa, sb in zip_longest(left["steps"], right["steps"]):
        x, y = _side(sa), _side(sb)
        differs = x is None or y is None or x["key"] != y["key"]
        index = (sa or sb)["step"]
        if differs and first is None:
            first = index
        rows.append({"step": index, "a": _public(x), "b": _public(y), "differs": differs})
    return {"a": _summary(left), "b": _summary(right), "rows": rows,
            "first_divergence": first, "identical": first is None,
            "differences": diff_sessions(store, left["id"], right["id"], limit=50)}


def _public(side: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if side is None else {k: v for k, v in side.items() if k != "key"}


def _summary(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: detail[k] for k in ("id", "graph", "mode", "status", "seed", "models",
                                   "fork_step")} | {"parent": (detail["lineage"]["parent"]
                                                               or {}).get("id")}
