"""Parsing through ``models`` (scripted): rule pins, answered pins, restored entities, the
bounded JSON proposal and its checks, fallbacks, and merge → re-parse round trips."""

from __future__ import annotations

import pytest
from tinmen.agents.t2i.facts import PRESENT, RELATION, UNSPECIFIED, Fact, merge_fact
from tinmen.agents.t2i.parsing import (
    Proposal,
    build_graph,
    checked_entities,
    checked_values,
    parse_prompt,
    proposal_schema,
)
from tinmen.agents.t2i.vocabulary import BACKGROUNDS, COLORS


class Calls:
    """A call sink that keeps what the parser asked its model."""

    def __init__(self) -> None:
        self.records = []

    def model_call(self, record) -> None:
        self.records.append(record)


def test_stated_and_answered_slots_are_pinned(models):
    result = parse_prompt(models, "parser", "a large red circle and a square",
                          answered={("square", "color"): "blue"})
    b = result.belief
    assert [e.name for e in b.entities] == ["circle", "square", "background"]
    assert b.slot("circle", "color").best == ("red", 1.0)
    assert b.attribute("circle", "size").pinned and b.attribute("circle", "size").source == \
        "rule"
    assert b.slot("square", "color").best == ("blue", 1.0)
    assert {(p.entity, p.attribute, p.value, p.source) for p in result.pins} == {
        ("circle", "color", "red", "rule"), ("circle", "size", "large", "rule"),
        ("square", "color", "blue", "answer")}
    open_slot = b.slot("square", "position")
    assert not open_slot.pinned  # nothing said: the scripted model's scores are uniform
    assert open_slot.candidates == pytest.approx({"left": 1 / 3, "center": 1 / 3,
                                                  "right": 1 / 3})
    assert list(b.slot("background", "color").candidates) == list(BACKGROUNDS)
    assert list(b.slot("circle", "color").candidates) == list(COLORS)
    assert result.failures == [] and not result.fell_back


def test_parser_proposes_json_under_a_bounded_schema(models):
    from tinmen.models.client import LiveModels

    calls = Calls()
    traced = LiveModels(models.pool, models.bindings, sink=calls)
    parse_prompt(traced, "parser", "a circle")
    generated = [r for r in calls.records if r.op == "generate"]
    assert len(generated) == 1 and generated[0].params["json_schema"] == proposal_schema()
    assert [r.op for r in calls.records].count("score") == 4  # 3 circle slots + background

    def bounded(node):
        if isinstance(node, dict):
            if node.get("type") == "array":
                assert "maxItems" in node
            if node.get("type") == "string":
                assert "maxLength" in node
            return all(bounded(v) for v in node.values())
        return True
    assert bounded(proposal_schema())


def test_proposals_are_checked_against_the_prompt_and_vocabulary():
    proposal = Proposal.model_validate({"entities": [
        {"name": "A", "type": "explicit", "attributes": [{"name": "color", "value": ".1"}]},
        {"name": "cats", "type": "explicit", "attributes": [
            {"name": "color", "value": "grey"}, {"name": "size", "value": "huge"}]},
        {"name": "sky", "type": "background", "attributes": []},
        {"name": "dragon", "type": "implicit", "attributes": []}]})
    prompt = "a grey cat, a big sofa"
    kept, rejected = checked_entities(proposal, prompt)
    assert kept == {"cat": "explicit", "sky": "implicit"}
    assert [r.split("'")[1] for r in rejected] == ["A", "dragon"]
    values, why = checked_values(proposal, prompt, ["cat", "sofa", "sky"])
    assert values == {("cat", "color"): "gray"}  # "grey" is spelled as the vocabulary does
    assert "huge" in why[0]


def test_implicit_entities_get_a_presence_probability(models):
    proposal = Proposal.model_validate({"entities": [
        {"name": "sky", "type": "implicit", "attributes": []}]})
    belief, _, _ = build_graph(models, "parser", "a bird", proposal)
    sky = belief.entity("sky")
    assert sky.kind == "implicit" and sky.probability == pytest.approx(0.5)
    assert belief.entity("image style") is not None  # everyday objects get a style slot


def test_answers_restore_what_the_parser_forgot(models):
    facts = [Fact(entity="star", attribute="color", value="red"),
             Fact(entity="circle", attribute="color", value="red", negated=True),
             Fact(entity="circle", attribute="size", value=UNSPECIFIED),
             Fact(entity="cloud", attribute=PRESENT, value="no")]
    result = parse_prompt(models, "parser", "a circle", answered=facts)
    b = result.belief
    assert b.slot("star", "color").best == ("red", 1.0)
    assert b.slot("circle", "color").candidates["red"] == 0.0
    assert b.attribute("circle", "size").importance == 0.0  # never asked again
    assert b.entity("cloud") is None  # absent and never mentioned: nothing to add
    star_pin = next(p for p in result.pins if p.entity == "star")
    assert star_pin.restored and star_pin.source == "answer"
    assert [p.value for p in result.pins if p.entity == "circle"] == ["not red", UNSPECIFIED]


def test_shapes_take_distinct_positions(models):
    two = parse_prompt(models, "parser", "a circle and a square",
                       answered={("circle", "position"): "left"}).belief
    assert two.slot("square", "position").candidates == pytest.approx(
        {"left": 0.0, "center": 0.5, "right": 0.5})
    three = parse_prompt(models, "parser", "a circle, a square and a star", answered={
        ("circle", "position"): "left", ("square", "position"): "right"}).belief
    assert three.slot("star", "position").best == ("center", 1.0)


@pytest.mark.parametrize("fact, check", [
    (Fact(entity="circle", attribute="color", value="red"),
     lambda b: b.slot("circle", "color").best == ("red", 1.0)),
    (Fact(entity="circle", attribute="position", value="center"),
     lambda b: b.slot("circle", "position").best == ("center", 1.0)),
    (Fact(entity="circle", attribute="color", value="red", negated=True),
     lambda b: b.slot("circle", "color").candidates["red"] == 0.0),
    (Fact(entity="background", attribute="color", value="gray"),
     lambda b: b.slot("background", "color").best == ("gray", 1.0)),
    (Fact(entity="square", attribute=PRESENT, value="no"),
     lambda b: b.entity("square").probability == 0.0),
    (Fact(entity="circle", attribute=RELATION, related="square", value="above"),
     lambda b: b.relation("circle", "square").best == ("above", 1.0)),
])
def test_merged_facts_are_read_back_without_pins(models, fact, check):
    prompt = merge_fact("a circle and a square", fact)
    assert prompt.startswith("a circle and a square, ")
    assert check(parse_prompt(models, "parser", prompt).belief), prompt


def test_unspecified_facts_leave_the_prompt_alone():
    assert merge_fact("a circle", "circle", "size", UNSPECIFIED) == "a circle"
    assert merge_fact("a circle", "circle", "color", "red") == "a circle, the circle is red"


def test_everyday_objects_and_stated_relations(models):
    b = parse_prompt(models, "parser", "a cat on a sofa").belief
    assert [e.name for e in b.entities] == ["cat", "sofa", "image style", "background"]
    assert b.relation("cat", "sofa").best == ("on", 1.0) and b.relation("cat", "sofa").pinned
    assert "material" in {a.name for a in b.entity("sofa").attributes}
    open_ = parse_prompt(models, "parser", "a cat and a dog").belief.relation("cat", "dog")
    assert not open_.pinned and sum(open_.candidates.values()) == pytest.approx(1.0)


def test_a_broken_model_is_counted_and_never_yields_an_invalid_graph(models):
    from tinmen.models.client import LiveModels
    from tinmen.models.registry import resolve_spec

    broken = LiveModels(models.pool, {"parser": resolve_spec(
        "scripted:tinmen.agents.t2i.scripted:T2IBrokenPolicy")})
    previous = parse_prompt(models, "parser", "a circle").belief
    result = parse_prompt(broken, "parser", "a circle and a square", previous=previous)
    assert result.fell_back and result.belief == previous
    assert len(result.failures) == 2
    assert "not JSON" in result.failures[0] and "previous graph" in result.failures[1]
    alone = parse_prompt(broken, "parser", "a circle")
    assert alone.fell_back and [e.name for e in alone.belief.entities] == ["background"]


def test_scripted_model_answers_schema_prompts_with_valid_bounded_json():
    import json
    import math

    from tinmen.agents.t2i import prompts
    from tinmen.agents.t2i.scripted import T2IPolicy
    from tinmen.models.protocols import GenerateParams

    policy = T2IPolicy()
    text = policy.respond(prompts.parse_prompt("a big blue star, a circle, a square, a cat "
                                               "and a dog"),
                          GenerateParams(json_schema=proposal_schema()), 0)
    proposal = Proposal.model_validate(json.loads(text))
    assert [e.name for e in proposal.entities] == ["star", "circle", "square", "cat"]  # ≤ 4
    assert {(a.name, a.value) for a in proposal.entities[0].attributes} == {
        ("size", "large"), ("color", "blue")}
    scores = policy.score(prompts.slot_prompt("a blue star and a circle", "star", "color"),
                          [" red", " blue"])
    assert [round(math.exp(s), 2) for s in scores] == [0.03, 0.97]
    flat = policy.score(prompts.slot_prompt("a blue star and a circle", "circle", "color"),
                        [" red", " blue"])
    assert flat[0] == flat[1]  # the circle's colour is not stated: uniform
