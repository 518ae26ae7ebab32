"""Simulated users: the oracle (exact), the LLM user (scripted model holding the long
description) and the stochastic user (seeded samples from a belief)."""

from __future__ import annotations

from collections import Counter

import pytest
from tinmen.agents.t2i.facts import PRESENT, RELATION
from tinmen.agents.t2i.policies import Action
from tinmen.agents.t2i.scenes import Scene
from tinmen.agents.t2i.users import UNSPECIFIED, LLMUser, OracleUser, StochasticUser

SCENE = Scene.model_validate({"entities": [
    {"name": "circle", "attributes": {"color": "blue", "position": "left", "size": "small"}},
    {"name": "square", "attributes": {"color": "red", "position": "right"}},
    {"name": "cat", "attributes": {"color": "gray"}},
    {"name": "sofa", "attributes": {}},
    {"name": "background", "attributes": {"color": "white"}}],
    "relations": [{"subject": "cat", "predicate": "on", "object": "sofa"}]})
LONG = "a small blue circle on the left, a red square on the right, on a white background"


def ask(entity, attribute, kind="attribute", candidate="", related="", options=(),
        question="?"):
    return Action(kind=kind, entity=entity, attribute=attribute, candidate=candidate,
                  related=related, options=options, question=question,
                  target=f"{entity}.{attribute}")


@pytest.mark.parametrize("action, value", [
    (ask("circle", "color"), "blue"),
    (ask("circle", "color", "binary", "blue"), "yes"),
    (ask("circle", "color", "binary", "red"), "no"),
    (ask("square", "size"), UNSPECIFIED),  # the scene says nothing about it
    (ask("star", "color"), UNSPECIFIED),
    (ask("cat", PRESENT, "entity"), "yes"),
    (ask("dog", PRESENT, "entity"), "no"),
    (ask("dog", PRESENT, "binary", "yes"), "no"),
    (ask("cat", RELATION, "relation", related="sofa"), "on"),
    (ask("sofa", RELATION, "relation", related="cat"), UNSPECIFIED),  # "on" has no inverse
    (ask("square", RELATION, "relation", related="circle"), "right of"),  # by position
    (ask("circle", RELATION, "binary", "left of", related="square"), "yes"),
    (Action(kind="free", question="What colour should the square be?"), "red"),
    (Action(kind="free", question="And the background?"), "white"),
    (Action(kind="free", question="Anything else?"), UNSPECIFIED),
])
def test_oracle_answers_exactly_from_the_scene(action, value):
    answer = OracleUser(SCENE).answer(action)
    assert answer.value == value and answer.source == "oracle"
    if value == UNSPECIFIED:
        assert answer.text == "I have no preference."


def test_llm_user_answers_from_the_long_description(models):
    user = LLMUser(models, "user", LONG)
    assert user.answer(ask("circle", "color", options=("red", "blue"),
                           question="What color is the circle?")).value == "blue"
    assert user.answer(ask("circle", "color", "binary", "red", options=("yes", "no"),
                           question="Is the circle red?")).value == "no"
    assert user.answer(ask("square", "position", options=("left", "center", "right"),
                           question="Where is the square?")).value == "right"
    unsure = user.answer(ask("square", "size", options=("small", "large"),
                             question="What size is the square?"))
    assert unsure.value == UNSPECIFIED and unsure.source == "llm"
    free = user.answer(Action(kind="free", question="What color is the background?"))
    assert free.value == "white"


def test_stochastic_user_samples_from_the_belief(make_graph):
    belief = make_graph(color={"red": 0.7, "blue": 0.3})
    action = ask("circle", "color", options=("red", "blue"))
    a = [StochasticUser(belief, seed=4).answer(action).value for _ in range(3)]
    assert a == [StochasticUser(belief, seed=4).answer(action).value] * 3
    user = StochasticUser(belief, seed=0)
    counts = Counter(user.answer(action).value for _ in range(600))
    assert counts["red"] / 600 == pytest.approx(0.7, abs=0.06)
    yes = Counter(user.answer(ask("circle", "color", "binary", "red")).value
                  for _ in range(600))
    assert yes["yes"] / 600 == pytest.approx(0.7, abs=0.06)
    settled = belief.pin("circle", "size", "large")
    assert StochasticUser(settled).answer(ask("circle", "size")).value == "large"
    assert StochasticUser(belief).answer(ask("moon", "color")).value == UNSPECIFIED
