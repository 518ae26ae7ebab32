"""The belief-graph picture's grid layout: whatever the graph, no two boxes and no two
relation labels overlap; changed values are outlined and say what they were."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.viewer.options import is_chosen, option_probabilities
from tinmen.viewer.svg import belief_svg

NS = "{http://www.w3.org/2000/svg}"
names = st.text("abcdefghij", min_size=1, max_size=30)


@st.composite
def graphs(draw):
    entity_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    entities = [{"name": n, "probability": draw(st.floats(0, 1)), "attributes": [
        {"name": a, "candidates": {v: 1 / k for v in draw(st.lists(names, min_size=k,
                                                                    max_size=k, unique=True))},
         "pinned": draw(st.booleans())}
        for a, k in zip(draw(st.lists(names, max_size=4, unique=True)),
                        draw(st.lists(st.integers(1, 6), min_size=4, max_size=4)))]}
        for n in entity_names]
    pairs = [(a, b) for a in entity_names for b in entity_names if a != b]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=5)) if pairs else []
    relations = [{"subject": a, "object": b, "candidates": {"left of": 0.7, "above": 0.3}}
                 for a, b in chosen]
    return {"prompt": "p", "entities": entities, "relations": relations}


def _boxes(svg: str, cls: str) -> list[tuple[float, float, float, float]]:
    root = ET.fromstring(svg)
    out = []
    for g in root.iter(f"{NS}g"):
        if cls in (g.get("class") or "").split():
            r = g.find(f"{NS}rect")
            out.append((float(r.get("x")), float(r.get("y")), float(r.get("width")),
                        float(r.get("height"))))
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and \
        b[1] < a[1] + a[3]


def _label_boxes(svg: str) -> list[tuple[float, float, float, float]]:
    root = ET.fromstring(svg)
    rects = [r for r in root.iter(f"{NS}rect") if r.get("height") == "15"]
    return [(float(r.get("x")), float(r.get("y")), float(r.get("width")), 15.0) for r in rects]


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_no_two_boxes_or_relation_labels_overlap(graph):
    svg = belief_svg(graph)
    boxes = _boxes(svg, "entity") + _boxes(svg, "slot")
    assert len(boxes) == len(graph["entities"]) + sum(len(e["attributes"])
                                                      for e in graph["entities"])
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    labels = _label_boxes(svg)
    assert len(labels) == len(graph["relations"])
    assert not any(_overlap(a, b) for i, a in enumerate(labels) for b in labels[i + 1:])
    assert not any(_overlap(a, b) for a in labels for b in boxes)


def test_changed_values_are_outlined_with_what_they_were():
    graph = {"prompt": "a circle", "entities": [{"name": "circle", "attributes": [
        {"name": "color", "candidates": {"red": 1.0}, "pinned": True, "source": "user_edit"},
        {"name": "size", "candidates": {"small": 0.5, "large": 0.5}}]}], "relations": []}
    svg = belief_svg(graph, changes={"circle.color": {"before": {"red": 0.5, "blue": 0.5}}},
                     removed=["star"])
    root = ET.fromstring(svg)
    changed = [g for g in root.iter(f"{NS}g") if "changed" in (g.get("class") or "")]
    assert [g.get("data-key") for g in changed] == ["circle.color"]
    texts = "".join(t.text or "" for t in root.iter(f"{NS}text"))
    assert "was red 0.50" in texts and "dropped: star" in texts and "1.00" in texts
    assert "<script" not in belief_svg({"prompt": "<script>", "entities": [
        {"name": "<script>alert(1)</script>", "attributes": []}]})


def test_option_probabilities_softmax_scores_and_keep_distributions():
    assert option_probabilities([{"option": "a", "score": 1.0}, {"option": "b", "score": 0.0}]
                                ) == [1.0, 0.0]
    soft = option_probabilities([{"option": "a", "score": 2.0}, {"option": "b", "score": 1.0}])
    assert abs(sum(soft) - 1) < 1e-9 and soft[0] > soft[1]
    assert option_probabilities([{"option": "a"}]) == [None]
    assert is_chosen({"item": 2, "name": "x", "score": 0.9}, {"item": 2, "label": 1})
    assert not is_chosen({"item": 1, "score": 0.1}, {"item": 2})
