"""Belief graphs through a session: which steps recorded a version (the T2I agent's
``belief_graph`` belief), the version in force at any step, what changed since the previous
version, and its picture."""

from __future__ import annotations

from typing import Any

from tinmen.viewer.svg import belief_svg

GRAPH_SUBJECT = "belief_graph"


def versions(detail: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(step index, graph JSON) of every recorded version, in order."""
    out = []
    for step in detail["steps"]:
        for b in step["beliefs"]:
            if b["subject"] == GRAPH_SUBJECT and isinstance(b["value"], dict):
                out.append((step["step"], b["value"]))
    return out


def at_step(detail: dict[str, Any], index: int) -> dict[str, Any] | None:
    """The version in force at step ``index``, the one before it, and whether this step
    recorded it; None where no version came before."""
    found = [(i, g) for i, g in versions(detail) if i <= index]
    if not found:
        return None
    step, graph = found[-1]
    previous = found[-2][1] if len(found) > 1 else None
    return {"step": step, "graph": graph, "previous": previous, "here": step == index}


def changes(previous: dict[str, Any] | None, graph: dict[str, Any]) -> dict[str, Any]:
    """The t2i agent's own diff of two versions, as keys to highlight and lines to list."""
    empty: dict[str, Any] = {"changed": {}, "added": set(), "removed": [], "lines": []}
    if previous is None:
        return empty
    from tinmen.agents.t2i.belief import BeliefGraph
    from tinmen.agents.t2i.diff import diff

    from tinmen.errors import TinmenError

    try:
        d = diff(BeliefGraph.from_json(previous), BeliefGraph.from_json(graph))
    except (TinmenError, ValueError, KeyError, TypeError):  # an old or foreign graph shape
        return empty
    return {"changed": {c.key: {"before": c.before, "after": c.after} for c in d.changed},
            "added": set(d.added), "removed": list(d.removed), "lines": d.lines()}


def picture(detail: dict[str, Any], index: int) -> dict[str, Any] | None:
    """The SVG of the version in force at step ``index``, changes highlighted where this
    step made the version."""
    found = at_step(detail, index)
    if found is None:
        return None
    delta = changes(found["previous"], found["graph"]) if found["here"] else changes(None, {})
    svg = belief_svg(found["graph"], changes=delta["changed"], added=delta["added"],
                     removed=delta["removed"])
    return {"svg": svg, "step": found["step"], "here": found["here"], "lines": delta["lines"]}
