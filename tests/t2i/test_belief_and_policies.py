"""Belief-graph invariants, edits, policies on hand-built graphs, the stopping rule, pins."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.agents.t2i import policies
from tinmen.agents.t2i.belief import BeliefGraph, Entity, Slot, diff
from tinmen.agents.t2i.edits import apply_edit
from tinmen.agents.t2i.metrics import belief_nll, fact_coverage
from tinmen.agents.t2i.parsing import parse_prompt
from tinmen.agents.t2i.scenes import Scene, SceneEntity, describe
from tinmen.agents.t2i.users import OracleUser
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

from tinmen.errors import BeliefEditError


def graph(color=None, position=None, size=None) -> BeliefGraph:
    def slot(attr, dist, importance):
        return Slot(entity="circle", attribute=attr, candidates=dist, importance=importance)
    return BeliefGraph(prompt="a circle", entities=(Entity(name="circle"),), slots=(
        slot("color", color or {"red": 0.5, "blue": 0.5}, 1.0),
        slot("position", position or {"left": 0.9, "right": 0.1}, 0.8),
        slot("size", size or {"small": 0.5, "large": 0.5}, 0.2)))


weights = st.lists(st.floats(min_value=0.01, max_value=10), min_size=1, max_size=6)


@given(weights)
@settings(max_examples=50, deadline=None)
def test_normalised_slots_validate_and_roundtrip(ws):
    total = sum(ws)
    dist = {f"v{i}": w / total for i, w in enumerate(ws)}
    belief = BeliefGraph(prompt="p", entities=(Entity(name="e"),), slots=(
        Slot(entity="e", attribute="a", candidates=dist),))
    assert BeliefGraph.from_json(belief.to_json()) == belief
    assert 0 <= belief.slots[0].entropy <= math.log(len(ws)) + 1e-9


@given(weights)
@settings(max_examples=30, deadline=None)
def test_unnormalised_slots_are_rejected_by_name(ws):
    dist = {f"v{i}": min(w, 1.0) for i, w in enumerate(ws)}
    if abs(sum(dist.values()) - 1) < 1e-3:
        return
    with pytest.raises(BeliefEditError, match="e.a"):
        BeliefGraph.from_json({"prompt": "p", "entities": [{"name": "e"}], "slots": [
            {"entity": "e", "attribute": "a", "candidates": dist}]})


def test_dangling_slot_and_bad_probability_are_named():
    with pytest.raises(BeliefEditError, match="ghost"):
        BeliefGraph.from_json({"prompt": "p", "entities": [], "slots": [
            {"entity": "ghost", "attribute": "a", "candidates": {"x": 1.0}}]})
    with pytest.raises(BeliefEditError, match="probability"):
        BeliefGraph.from_json({"prompt": "p", "entities": [{"name": "e", "probability": 2}]})


def test_updates_return_new_graphs_and_diff_reports_them():
    old = graph()
    new = old.pin("circle", "color", "blue")
    assert old.slot("circle", "color").candidates == {"red": 0.5, "blue": 0.5}
    assert new.slot("circle", "color").pinned
    assert diff(old, new) == ["~ circle.color: red (0.50) -> blue (1.00) pinned"]


def test_edits_apply_and_fail_in_one_line():
    g = graph()
    edited, subject = apply_edit(g, "set circle.color=red")
    assert subject == "circle.color" and edited.slot("circle", "color").best == ("red", 1.0)
    assert apply_edit(g, "drop circle")[0].entities == ()
    assert apply_edit(g, "add star")[0].entity("star") is not None
    for bad, needle in [("set circle.color=green", "not a candidate"),
                        ("set circle=red", "malformed"), ("drop star", "no entity 'star'"),
                        ("paint it", "not an edit"), ("set cube.color=red", "no slot")]:
        with pytest.raises(BeliefEditError, match=needle) as info:
            apply_edit(g, bad)
        assert "\n" not in str(info.value)


def test_attribute_policy_picks_importance_times_entropy():
    choice = policies.attribute_policy(graph())
    assert choice.action.attribute == "color"  # 1.0 × ln2 beats 0.8 × H(0.9) and 0.2 × ln2
    assert [a.attribute for a in choice.runner_ups] == ["position", "size"]
    assert choice.action.options == ("red", "blue")


def test_binary_policy_scores_p_times_one_minus_p():
    choice = policies.binary_policy(graph(color={"red": 0.95, "blue": 0.05}))
    # position: 0.8*0.9*0.1=0.072; color: 1*0.95*0.05=0.0475; size: 0.2*0.25=0.05
    assert (choice.action.attribute, choice.action.candidate) == ("position", "left")
    assert choice.action.options == ("yes", "no")


def test_random_policy_is_seeded():
    a = policies.random_policy(graph(), [], seed=3).action
    assert a == policies.random_policy(graph(), [], seed=3).action


def test_stopping_rule():
    settled = graph(color={"red": 0.95, "blue": 0.05}, position={"left": 1.0, "right": 0.0})
    assert policies.should_stop(settled, 1, 5)[0]  # size is unimportant (0.2)
    assert not policies.should_stop(graph(), 1, 5)[0]
    assert policies.should_stop(graph(), 5, 5) == (True, "turn budget 5 spent")


def test_parser_pins_stated_and_answered_slots():
    models = LiveModels(ModelPool(), {"parser": resolve_spec("scripted:t2i")})
    result = parse_prompt(models, "parser", "a large red circle and a square",
                          answered={("square", "color"): "blue"})
    belief = result.belief
    assert belief.slot("circle", "color").best == ("red", 1.0)
    assert belief.slot("circle", "size").pinned
    assert belief.slot("square", "color").best == ("blue", 1.0)
    assert {(p.entity, p.attribute, p.source) for p in result.pins} == {
        ("circle", "color", "rule"), ("circle", "size", "rule"), ("square", "color", "answer")}
    assert not belief.slot("square", "position").pinned


def test_metrics_on_a_hand_computation():
    scene = Scene(entities=[SceneEntity(name="circle", attributes={
        "color": "blue", "position": "left", "size": "small"})])
    g = graph()  # color undecided (0.5), position left (0.9), size undecided
    assert fact_coverage(g, scene) == pytest.approx(3 / 4)  # present, color@0.5, position
    assert belief_nll(g, scene) == pytest.approx(
        -(1.0 * math.log(0.5) + 0.8 * math.log(0.9) + 0.2 * math.log(0.5)))
    assert describe(scene) == "a small blue circle on the left"


def test_oracle_user_answers_from_the_scene():
    scene = Scene(entities=[SceneEntity(name="circle", attributes={"color": "blue"})])
    user = OracleUser(scene)
    action = policies.attribute_policy(graph()).action
    assert user.answer(action).value == "blue"
    yes_no = policies.Action(kind="binary", entity="circle", attribute="color",
                             candidate="red", question="?", options=("yes", "no"))
    assert user.answer(yes_no).value == "no"
    missing = action.model_copy(update={"entity": "star"})
    assert user.answer(missing).value == "unspecified"


def test_belief_picture_png_and_svg(tmp_path):
    from tinmen.agents.t2i.picture import draw_belief

    png = draw_belief(graph().pin("circle", "color", "red"), tmp_path / "b.png")
    svg = draw_belief(graph(), tmp_path / "b.svg")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "0.90" in svg.read_text() and "position" in svg.read_text()


def test_llm_user_answers_from_the_description():
    from tinmen.agents.t2i.users import LLMUser

    models = LiveModels(ModelPool(), {"user": resolve_spec("scripted:t2i")})
    user = LLMUser(models, "user", "a small blue circle on the left")
    assert user.answer(policies.attribute_policy(graph()).action).value == "blue"
