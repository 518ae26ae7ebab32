"""Who wrote what: a summary of composite models' handoffs, for any report.

A role bound to a ``nudged`` or ``cascade`` spec (``models/composite.py``) records each
handoff as a decision and each composite call as a model call (device ``composite``)
whose output names the writer of every token. :func:`handoff_table` condenses them per role
and composite kind; :func:`handoff_summary` renders that as a Markdown section, or ``""``
where the sessions have no composite calls — so a report can always call it.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from tinmen.storage import Store, analysis

COLUMNS = ("role", "kind", "calls", "handoffs", "tokens", "share_aligned", "mean_base_top1",
           "deferral_rate", "top_spans")


def _composite_calls(store: Store, filters: dict[str, Any]) -> pd.DataFrame:
    calls = analysis.model_calls(store, **filters)
    calls = calls[calls["device"] == "composite"].reset_index(drop=True)
    if calls.empty:
        return calls.assign(writers=[], kind=[])
    with store.unit_of_work() as uow:
        texts = uow.content.get_many(list(calls["output_sha"]))
    outputs = [json.loads(texts[s]) for s in calls["output_sha"]]
    extras = [o.get("composite", {}) if isinstance(o, dict) else {} for o in outputs]
    calls["writers"] = [e.get("writers", []) for e in extras]
    calls["kind"] = ["cascade" if "deferred" in e else "nudged" for e in extras]
    return calls


def handoff_table(store: Store, **filters: Any) -> pd.DataFrame:
    """Per role and composite kind: composite calls, handoffs, answer tokens, share written
    by the aligned model (Nudging), mean base top-1 probability at a nudge, deferral rate
    (cascades), and the most frequent nudged spans."""
    calls = _composite_calls(store, filters)
    moves = analysis.handoffs(store, **filters)
    rows = []
    for (role, kind), group in calls.groupby(["role", "kind"]) if len(calls) else ():
        writers = [w for ws in group["writers"] for w in ws]
        mine = moves[moves["role"] == role] if len(moves) else moves
        nudges = mine[mine["kind"] == "handoff"] if len(mine) else mine
        defers = mine[(mine["kind"] == "deferral")] if len(mine) else mine
        spans = (nudges["span"].str.strip().value_counts().head(5) if len(nudges)
                 else pd.Series(dtype=int))
        rows.append({
            "role": role, "kind": kind, "calls": len(group), "handoffs": len(mine),
            "tokens": len(writers),
            "share_aligned": writers.count("aligned") / len(writers) if writers else None,
            "mean_base_top1": float(nudges["base_top1"].mean()) if len(nudges) else None,
            "deferral_rate": (float((defers["writer"] == "large").mean()) if len(defers)
                              else None),
            "top_spans": ", ".join(f"{s!r}×{n}" for s, n in spans.items())})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def handoff_summary(store: Store, **filters: Any) -> str:
    """A Markdown section on the composite models of the selected sessions (the same
    filters as the analysis API: ``study=``, ``session=``, …); ``""`` where there are none."""
    table = handoff_table(store, **filters)
    if table.empty:
        return ""
    lines = ["", "## Composite models: who wrote what", "",
             "| role | kind | calls | handoffs | tokens | aligned share | base top-1 at nudge "
             "| deferral rate | most nudged spans |", "|" + "---|" * 9]
    for r in table.to_dict(orient="records"):
        lines.append(f"| {r['role']} | {r['kind']} | {r['calls']} | {r['handoffs']} | "
                     f"{r['tokens']} | {_num(r['share_aligned'])} | "
                     f"{_num(r['mean_base_top1'])} | {_num(r['deferral_rate'])} | "
                     f"{r['top_spans'] or '—'} |")
    lines.append("")
    lines.append("One row per handoff: `tinmen.analysis.handoffs(store, study=...)`.")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "—" if value is None or value != value else f"{float(value):.3f}"
