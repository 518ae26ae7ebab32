"""The belief graph: invariants (hypothesis), named errors, updates, JSON, diff, the most
likely scene and its prompt, networkx and the picture."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity, Relation, diff
from tinmen.models.backends.renderer import parse_clauses

from tinmen.errors import BeliefEditError

weights = st.lists(st.floats(min_value=0.01, max_value=10), min_size=1, max_size=6)
names = st.sampled_from(["circle", "square", "star", "cat", "sofa"])


@st.composite
def graphs(draw) -> BeliefGraph:
    """Random valid graphs: unique entities, normalised slots, relations between them."""
    chosen = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    entities = []
    for name in chosen:
        attrs = draw(st.lists(st.sampled_from(["color", "size", "position"]), unique=True,
                              max_size=3))
        entities.append(Entity(name=name, probability=draw(st.floats(0, 1)),
                               importance=draw(st.floats(0, 1)), attributes=tuple(
            Attribute(name=a, candidates=_dist(draw(weights))) for a in attrs)))
    pairs = [(a, b) for a in chosen for b in chosen if a < b]
    rels = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    return BeliefGraph(prompt="p", entities=tuple(entities), relations=tuple(
        Relation(subject=a, object=b, candidates=_dist(draw(weights))) for a, b in rels))


def _dist(ws: list[float]) -> dict[str, float]:
    return {f"v{i}": w / sum(ws) for i, w in enumerate(ws)}


@given(graphs())
@settings(max_examples=60, deadline=None)
def test_valid_graphs_roundtrip_through_json_and_keep_invariants(g):
    again = BeliefGraph.from_json(json.loads(json.dumps(g.to_json())))
    assert again == g
    for key, h in g.entropies().items():
        if key.endswith(".present"):
            n = 2
        elif "|" in key:
            n = len(g.relation(*key.split("|")).candidates)
        else:
            n = len(g.slot(*key.split(".", 1)).candidates)
        assert -1e-9 <= h <= math.log(n) + 1e-9
    nx_graph = g.to_networkx()
    assert {e.name for e in g.entities} <= set(nx_graph.nodes)
    assert sum(1 for *_, d in nx_graph.edges(data=True) if d["role"] == "relation") == len(
        g.relations)


@given(graphs(), weights)
@settings(max_examples=40, deadline=None)
def test_unnormalised_candidates_are_rejected_naming_the_slot(g, ws):
    bad = {f"v{i}": min(w, 1.0) for i, w in enumerate(ws)}
    if abs(sum(bad.values()) - 1) < 1e-3:
        return
    data = g.to_json()
    data["entities"][0]["attributes"] = [{"name": "color", "candidates": bad}]
    with pytest.raises(BeliefEditError, match=rf"{g.entities[0].name}\.color") as info:
        BeliefGraph.from_json(data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("data, needle", [
    ({"entities": [{"name": "circle", "probability": 2}]}, "circle probability"),
    ({"entities": [{"name": "circle", "attributes": [
        {"name": "color", "candidates": {"red": 1.5, "blue": -0.5}}]}]},
     "circle.color candidates.red"),
    ({"entities": [{"name": "circle"}, {"name": "circle"}]}, "'circle' appears twice"),
    ({"entities": [{"name": "circle"}], "relations": [
        {"subject": "circle", "object": "ghost", "candidates": {"on": 1}}]}, "'ghost'"),
    ({"entities": [{"name": "circle"}], "relations": [
        {"subject": "circle", "object": "circle", "candidates": {"on": 1}}]}, "itself"),
    ({"entities": [{"name": "circle", "attributes": [
        {"name": "color", "candidates": {}}]}]}, "circle.color has no candidates"),
    ({"entities": [{"name": "circle", "colour": "red"}]}, "circle colour"),
])
def test_invalid_graphs_name_the_offending_item(data, needle):
    with pytest.raises(BeliefEditError, match=needle) as info:
        BeliefGraph.from_json({"prompt": "p", **data})
    assert "\n" not in str(info.value)


def test_updates_return_new_graphs(graph):
    pinned = graph.pin("circle", "color", "blue")
    assert graph.slot("circle", "color").candidates == {"red": 0.5, "blue": 0.5}
    assert pinned.slot("circle", "color").candidates == {"red": 0.0, "blue": 1.0}
    assert pinned.attribute("circle", "color").pinned
    assert pinned.attribute("circle", "color").source == "answer"
    new_value = graph.pin("circle", "color", "crimson")  # a value outside the candidates
    assert new_value.slot("circle", "color").best == ("crimson", 1.0)


def test_exclusion_renormalises_and_pins_the_last_value(make_graph):
    g = make_graph(color={"red": 0.5, "blue": 0.3, "green": 0.2})
    once = g.exclude("circle", "color", "red")
    assert once.slot("circle", "color").candidates == pytest.approx(
        {"red": 0.0, "blue": 0.6, "green": 0.4})
    assert not once.slot("circle", "color").pinned
    twice = once.exclude("circle", "color", "blue")
    assert twice.slot("circle", "color").best == ("green", 1.0)
    assert twice.slot("circle", "color").pinned
    with pytest.raises(BeliefEditError, match="no candidate 'pink' in slot circle.color"):
        g.exclude("circle", "color", "pink")


def test_presence_relations_and_entities(graph):
    g = graph.with_entity(Entity(name="cloud", kind="implicit", probability=0.4))
    g = g.with_relation(Relation(subject="circle", object="cloud",
                                 candidates={"below": 0.7, "above": 0.3}))
    assert g.set_presence("cloud", False).entity("cloud").probability == 0.0
    pinned = g.pin_relation("circle", "cloud", "above")
    assert pinned.relation("circle", "cloud").candidates == {"below": 0.0, "above": 1.0}
    assert g.exclude_relation("circle", "cloud", "below").relation(
        "circle", "cloud").pinned
    dropped = g.without_entity("cloud")
    assert dropped.relations == () and dropped.entity("cloud") is None
    with pytest.raises(BeliefEditError, match="already in the graph"):
        g.with_entity(Entity(name="cloud"))
    with pytest.raises(BeliefEditError, match="no entity 'moon' to drop"):
        g.without_entity("moon")


def test_diff_lists_added_removed_and_changed(graph):
    new = graph.pin("circle", "color", "blue").with_entity(Entity(name="star"))
    d = diff(graph, new)
    assert d.added == ("star",) and d.removed == ()
    assert [c.key for c in d.changed] == ["circle.color"]
    assert d.changed[0].before == {"red": 0.5, "blue": 0.5}
    assert d.lines() == ["+ entity star", "~ circle.color: red (0.50) -> blue (1.00) pinned"]
    back = diff(new, graph)
    assert back.removed == ("star",) and not diff(graph, graph)


def test_most_likely_scene_keeps_only_confident_values(make_graph):
    g = make_graph(color={"red": 0.8, "blue": 0.2})
    scene = g.most_likely_scene()
    assert scene.entity("circle").attributes == {"color": "red", "position": "left"}
    assert g.to_prompt() == "a red circle on the left"  # size is a 50/50 coin: left out


def test_to_prompt_is_the_shapes_world_sentence_the_renderer_reads():
    def shape(name, color, size, position):
        return Entity(name=name, attributes=tuple(
            Attribute(name=k, candidates={v: 1.0}) for k, v in
            (("color", color), ("size", size), ("position", position))))

    g = BeliefGraph(entities=(
        shape("circle", "red", "large", "left"), shape("square", "blue", "small", "right"),
        Entity(name="background", kind="background", attributes=(
            Attribute(name="color", candidates={"gray": 1.0}),))))
    text = g.to_prompt()
    assert text == ("a large red circle on the left, a small blue square on the right, "
                    "on a gray background")
    objects, background = parse_clauses(text)
    assert background == "gray"
    assert [(o["name"], o["color"], o["size"], o["slot"]) for o in objects] == [
        ("circle", "red", "large", 0), ("square", "blue", "small", 2)]
    facts = g.most_likely_scene().facts()
    assert ("rel", "circle", "left of", "square") in facts


def test_slot_views_carry_the_policy_weight():
    g = BeliefGraph(entities=(Entity(name="cloud", probability=0.5, importance=0.4,
                                     attributes=(Attribute(name="color", importance=0.5,
                                                           candidates={"white": 1.0}),)),))
    assert g.slot("cloud", "color").weight == pytest.approx(0.4 * 0.5 * 0.5)
    assert g.slot("cloud", "size") is None and g.slots_of("moon") == []


def test_picture_png_and_svg_show_probabilities(tmp_path, graph):
    from tinmen.agents.t2i.picture import draw_belief

    g = graph.with_entity(Entity(name="square")).with_relation(Relation(
        subject="circle", object="square", candidates={"left of": 0.75, "right of": 0.25}))
    png = draw_belief(g.pin("circle", "color", "red"), tmp_path / "b.png")
    svg = draw_belief(g, tmp_path / "b.svg").read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    for shown in ("0.90", "position", "left of 0.75", "p=1.00"):
        assert shown in svg
