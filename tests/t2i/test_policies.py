"""Each policy's choice on hand-built graphs (scores computed by hand), the random
baselines, the LLM policies through the scripted model, and the stopping rule."""

from __future__ import annotations

import math

import pytest
from tinmen.agents.t2i import policies
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity, Relation

from tinmen.errors import ConfigError

H = math.log(2)  # entropy of a 50/50 slot
H91 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))


def test_attribute_policy_picks_importance_times_probability_times_entropy(graph):
    action = policies.attribute_policy(graph, [])
    assert (action.kind, action.target, action.question) == (
        "attribute", "circle.color", "What color is the circle?")
    assert action.options == ("red", "blue")
    assert action.score == pytest.approx(1.0 * H)
    assert [(a.target, round(a.score, 6)) for a in action.runner_ups] == [
        ("circle.position", round(0.8 * H91, 6)), ("circle.size", round(0.1 * H, 6))]
    assert action.runner_ups[0].question == "Where is the circle?"


def test_entity_probability_scales_the_attribute_score(graph):
    unlikely = graph.update_entity("circle", probability=0.3)
    assert policies.attribute_policy(unlikely, []).score == pytest.approx(0.3 * H)


def test_attribute_policy_asks_about_presence_and_relations(graph):
    cloud = graph.pin("circle", "color", "red").with_entity(
        Entity(name="cloud", kind="implicit", probability=0.5))
    action = policies.attribute_policy(cloud, [])
    assert (action.kind, action.target, action.options) == ("entity", "cloud.present",
                                                            ("yes", "no"))
    assert action.question == "Is there a cloud in the image?"
    related = graph.pin("circle", "color", "red").with_entity(Entity(name="square"))
    related = related.with_relation(Relation(subject="circle", object="square", candidates={
        "left of": 0.5, "right of": 0.5}, importance=0.5))
    action = policies.attribute_policy(related, [])
    assert (action.kind, action.target, action.score) == ("relation", "circle|square",
                                                          pytest.approx(0.5 * H))
    assert action.question == "Where is the circle relative to the square?"


def test_binary_policy_scores_p_times_one_minus_p(make_graph):
    g = make_graph(color={"red": 0.95, "blue": 0.05})
    action = policies.binary_policy(g, [])
    # position: 0.8*0.9*0.1 = 0.072 > size 0.1*0.25 = 0.025 and colour 1*0.95*0.05 = 0.0475
    assert (action.target, action.candidate, action.options) == (
        "circle.position", "left", ("yes", "no"))
    assert action.score == pytest.approx(0.072)
    assert action.question == "Is the circle on the left?"
    assert action.runner_ups[0].candidate == "right"  # the same slot's other candidate


def test_binary_policy_halves_relation_scores(graph):
    g = graph.pin("circle", "position", "left").pin("circle", "color", "red").with_entity(
        Entity(name="square")).with_relation(Relation(
            subject="circle", object="square", candidates={"above": 0.5, "below": 0.5},
            importance=1.0))
    action = policies.binary_policy(g, [])
    assert action.question == "Is the circle above the square?"
    assert action.score == pytest.approx(0.5 * 0.25)


def test_random_baselines_are_seeded_and_never_repeat(graph):
    one = policies.random_policy(graph, [], seed=3)
    assert one == policies.random_policy(graph, [], seed=3)
    pinned = graph.pin("circle", "color", "red")
    blind = {policies.random_policy(pinned, [], seed=s).target for s in range(30)}
    informed = {policies.random_policy(pinned, [], seed=s, informed=True).target
                for s in range(30)}
    assert "circle.color" in blind and "circle.color" not in informed
    asked = [{"action": {"target": t, "candidate": ""}} for t in
             ("circle.color", "circle.position", "circle.size")]
    assert policies.random_policy(graph, asked, seed=1) is None
    yes_no = policies.random_policy(graph, [], seed=2, question="binary")
    assert yes_no.kind == "binary" and yes_no.candidate in ("red", "blue", "left", "right",
                                                            "small", "large")


def test_stopping_rule(make_graph):
    settled = make_graph(color={"red": 0.95, "blue": 0.05},
                         position={"left": 1.0, "right": 0.0})
    assert policies.should_stop(settled, 1, 5) == (
        True, "every important candidate is settled (p ≤ 0.1 or ≥ 0.9)")  # size: 0.1 < 0.2
    stop, why = policies.should_stop(make_graph(), 1, 5)
    assert not stop and "circle.color" in why
    assert policies.should_stop(make_graph(), 5, 5) == (True, "turn budget 5 spent")
    # a uniform slot over 11 values has every p ≤ 0.1 but is not settled
    wide = make_graph(color={f"c{i}": 1 / 11 for i in range(11)},
                      position={"left": 1.0})
    assert not policies.should_stop(wide, 0, 5)[0]
    # the attributes of an entity that is surely absent do not count
    gone = make_graph().update_entity("circle", probability=0.05)
    assert policies.should_stop(gone, 0, 5)[0]


def test_belief_llm_words_the_question_but_keeps_the_slot(models, graph):
    policy = policies.make_policy("belief-llm", models)
    action = policy(graph, [])
    assert action.target == "circle.color" and action.options == ("red", "blue")
    assert action.question == "Which color would you like for the circle (red, blue)?"


def test_llm_only_asks_from_the_prompt_and_history(models):
    g = BeliefGraph(prompt="a circle")
    policy = policies.make_policy("llm-only", models)
    first = policy(g, [])
    assert (first.kind, first.question, first.target) == (
        "free", "What color is the circle?", "")
    second = policy(g, [{"question": first.question, "answer": "red"}])
    assert second.question == "Where is the circle?"


def test_make_policy_and_choose_action(graph):
    with pytest.raises(ConfigError, match="unknown policy 'greedy'"):
        policies.make_policy("greedy")
    with pytest.raises(ConfigError, match="needs models"):
        policies.make_policy("belief-llm")
    choice = policies.choose_action("attribute", graph, [])
    assert choice.action.target == "circle.color" and len(choice.runner_ups) == 2
    assert choice.action.runner_ups == ()
    empty = BeliefGraph(entities=(Entity(name="x", attributes=(
        Attribute(name="color", candidates={"red": 1.0}, pinned=True),)),))
    assert policies.choose_action("binary", empty, []) is None


def test_llm_wording_is_kept_only_when_it_is_a_question_about_the_target(models, graph):
    from tinmen.models.client import LiveModels
    from tinmen.models.registry import resolve_spec

    echo = LiveModels(models.pool, {"questioner": resolve_spec("scripted:echo")})
    draft = policies.attribute_policy(graph, [])
    assert policies.llm_question(echo, "questioner", graph, draft) == draft
    assert policies.as_question("Sure! Which size should it be? Thanks") == \
        "Which size should it be?"
    assert policies.as_question("The star is in the center.") is None
    assert policies.as_question("Here you go. I think so?") is None
    copied = draft.model_copy(update={"question": "What color should the rabbit be?"})
    assert not policies._names_target(copied.question, draft)
    assert policies._names_target("Which colour for the circle?", draft)
