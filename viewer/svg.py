"""The T2I belief graph as an SVG drawn on a grid, so nothing can overlap: one column per
entity (its box on top, its attribute boxes stacked under it, each candidate value with a
probability bar), relations as labelled arrows in lanes of their own above the columns.
Values that changed since the previous version are outlined in orange, with what they were.
"""

from __future__ import annotations

from html import escape
from typing import Any

COL_W, GAP, MARGIN, TITLE_H = 190, 24, 14, 26
HEAD_H, LANE_H, ROW_H, BOX_GAP, TOP_K = 44, 22, 15, 8, 4
ENTITY, OPEN, PINNED, CHANGED, EDITED = "#9ecae1", "#fdd0a2", "#a1d99b", "#e6550d", "#756bb1"


def _t(x: float, y: float, text: str, *, size: int = 11, weight: str = "normal",
       fill: str = "#222", anchor: str = "start", cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" '
            f'fill="{fill}" text-anchor="{anchor}"{extra}>{escape(text)}</text>')


def _clip(text: Any, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _ranked(candidates: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(candidates.items(), key=lambda kv: -kv[1])


def _best(candidates: dict[str, float] | None) -> str:
    if not candidates:
        return "—"
    value, p = _ranked(candidates)[0]
    return f"{value} {p:.2f}"


def _slot_box(x: float, y: float, entity: str, attr: dict[str, Any],
              changes: dict[str, Any]) -> tuple[list[str], float]:
    key = f"{entity}.{attr['name']}"
    ranked = [(v, p) for v, p in _ranked(attr.get("candidates") or {}) if p > 0][:TOP_K]
    change = changes.get(key)
    h = 20 + ROW_H * max(len(ranked), 1) + (ROW_H if change else 0) + 4
    fill = PINNED if attr.get("pinned") else OPEN
    stroke, width = (CHANGED, 3) if change else (
        (EDITED, 2) if attr.get("source") == "user_edit" else ("#888", 1))
    cls = "slot changed" if change else "slot"
    out = [f'<g class="{cls}" data-key="{escape(key)}">',
           f'<rect x="{x}" y="{y}" width="{COL_W}" height="{h}" rx="5" fill="{fill}" '
           f'stroke="{stroke}" stroke-width="{width}"/>']
    tag = " (edited)" if attr.get("source") == "user_edit" else " (pinned)" if attr.get(
        "pinned") else ""
    out.append(_t(x + 8, y + 14, _clip(attr["name"] + tag, 28), weight="bold"))
    for i, (value, p) in enumerate(ranked):
        ry = y + 20 + i * ROW_H
        out.append(_t(x + 8, ry + 11, _clip(value, 13)))
        out.append(f'<rect x="{x + 92}" y="{ry + 3}" width="56" height="9" fill="#fff" '
                   f'stroke="#bbb"/><rect x="{x + 92}" y="{ry + 3}" width="{56 * p:.1f}" '
                   f'height="9" fill="#3182bd"/>')
        out.append(_t(x + COL_W - 8, ry + 11, f"{p:.2f}", anchor="end", cls="prob"))
    if change:
        was = "new" if change.get("before") is None else "was " + _best(change["before"])
        out.append(_t(x + 8, y + h - 7, _clip(was, 30), size=10, fill=CHANGED,
                      weight="bold"))
    out.append("</g>")
    return out, h


def _entity_column(x: float, y: float, entity: dict[str, Any], changes: dict[str, Any],
                   added: set[str]) -> tuple[list[str], float]:
    name = entity["name"]
    new, moved = name in added, f"{name}.present" in changes
    stroke = CHANGED if new or moved else EDITED if entity.get("source") == "user_edit" \
        else "#555"
    dash = ' stroke-dasharray="6 3"' if new else ""
    out = [f'<g class="entity{" changed" if new or moved else ""}" data-key="{escape(name)}">',
           f'<rect x="{x}" y="{y}" width="{COL_W}" height="{HEAD_H}" rx="7" fill="{ENTITY}" '
           f'stroke="{stroke}" stroke-width="{3 if new or moved else 1.5}"{dash}/>',
           _t(x + COL_W / 2, y + 18, _clip(name, 24), size=13, weight="bold",
              anchor="middle")]
    sub = f"{entity.get('kind', 'explicit')} · p={float(entity.get('probability', 1)):.2f}"
    sub += " · new" if new else " · pinned" if entity.get("pinned") else ""
    out += [_t(x + COL_W / 2, y + 35, sub, size=10, anchor="middle", cls="prob"), "</g>"]
    cy = y + HEAD_H + BOX_GAP
    for attr in entity.get("attributes") or []:
        box, h = _slot_box(x, cy, name, attr, changes)
        out += box
        cy += h + BOX_GAP
    return out, cy


def _relations(relations: list[dict[str, Any]], centers: dict[str, float], top: float,
               changes: dict[str, Any]) -> list[str]:
    out = []
    drawable = [r for r in relations if r.get("subject") in centers and r.get("object") in
                centers and r["subject"] != r["object"]]
    for i, rel in enumerate(drawable):
        y = top + 12 + i * LANE_H
        dx = (i - (len(drawable) - 1) / 2) * 8
        xs, xo = centers[rel["subject"]] + dx, centers[rel["object"]] + dx
        bottom = top + len(drawable) * LANE_H + 6
        changed = f"{rel['subject']}|{rel['object']}" in changes
        color = CHANGED if changed else "#555"
        out.append(f'<path d="M{xs:.1f},{bottom} L{xs:.1f},{y} L{xo:.1f},{y} L{xo:.1f},'
                   f'{bottom}" fill="none" stroke="{color}" stroke-width="1.5" '
                   f'marker-end="url(#arrow)"/>')
        label = _clip(f"{rel['subject']} {_best(rel.get('candidates'))} {rel['object']}", 34)
        mid, w = (xs + xo) / 2, 6.2 * len(label) + 8
        out.append(f'<rect x="{mid - w / 2:.1f}" y="{y - 8}" width="{w:.1f}" height="15" '
                   f'fill="#fff" stroke="{color}" rx="3"/>')
        out.append(_t(mid, y + 3.5, label, size=10, anchor="middle", fill=color,
                      weight="bold" if changed else "normal", cls="relation"))
    return out


def belief_svg(graph: dict[str, Any], *, changes: dict[str, Any] | None = None,
               added: set[str] | None = None, removed: list[str] | None = None,
               title: str | None = None) -> str:
    """The SVG text of ``graph`` (a BeliefGraph's JSON); ``changes`` maps changed keys
    (``circle.color``, ``circle.present``, ``circle|square``) to ``{"before": {...}}``."""
    changes, added = changes or {}, added or set()
    entities = list(graph.get("entities") or [])
    relations = list(graph.get("relations") or [])
    n_lanes = sum(1 for r in relations if r.get("subject") != r.get("object"))
    band = n_lanes * LANE_H + 6 if n_lanes else 0
    top = MARGIN + TITLE_H
    centers = {e["name"]: MARGIN + i * (COL_W + GAP) + COL_W / 2 for i, e in enumerate(entities)}
    body: list[str] = []
    bottom: float = top + band + HEAD_H
    for i, entity in enumerate(entities):
        col, end = _entity_column(MARGIN + i * (COL_W + GAP), top + band, entity, changes,
                                  added)
        body += col
        bottom = max(bottom, end)
    body += _relations(relations, centers, top, changes)
    width = max(MARGIN * 2 + len(entities) * (COL_W + GAP) - GAP, 360)
    footer = []
    if removed:
        footer.append(_t(MARGIN, bottom + 14, "dropped: " + ", ".join(removed), fill=CHANGED,
                         weight="bold"))
        bottom += 20
    heading = title or f"belief: {_clip(graph.get('prompt', ''), 70)}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="belief-graph" width="{width}" '
            f'height="{bottom + MARGIN:.0f}" viewBox="0 0 {width} {bottom + MARGIN:.0f}" '
            'font-family="DejaVu Sans, Arial, sans-serif">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#555"/></marker></defs>'
            f'<rect width="100%" height="100%" fill="#fff"/>'
            + _t(MARGIN, MARGIN + 12, heading, size=12, weight="bold")
            + "".join(body) + "".join(footer) + "</svg>")
