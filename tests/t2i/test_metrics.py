"""Metrics against hand computations: the paper's importance-weighted NLL, fact coverage
(with and without a synonym matcher), relation probabilities from positions."""

from __future__ import annotations

import math

import pytest
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity
from tinmen.agents.t2i.metrics import (
    FLOOR,
    belief_nll,
    embedding_matcher,
    fact_coverage,
    questions_to_reach,
    relation_probability,
)
from tinmen.agents.t2i.scenes import Scene, SceneEntity, SceneRelation

CIRCLE = SceneEntity(name="circle", attributes={"color": "blue", "position": "left",
                                                "size": "small"})


def test_nll_is_importance_weighted_and_floored(graph):
    scene = Scene(entities=[CIRCLE])
    # presence p=1 costs 0; colour 1.0·ln2; position 0.8·(−ln 0.9); size 0.6·ln2
    expected = math.log(2) + 0.8 * -math.log(0.9) + 0.6 * math.log(2)
    assert belief_nll(graph, scene) == pytest.approx(expected)
    assert belief_nll(graph, scene, use_importance=False) == pytest.approx(
        2 * math.log(2) - math.log(0.9))
    with_bg = Scene(entities=[CIRCLE, SceneEntity(name="background",
                                                  attributes={"color": "gray"})])
    missing = -math.log(FLOOR) * 0.5 * 2  # background absent: presence and colour floored
    assert belief_nll(graph, with_bg) == pytest.approx(expected + missing)
    assert belief_nll(graph.pin("circle", "color", "blue"), scene) < belief_nll(graph, scene)


def test_relation_probability_from_positions():
    def shape(name, position):
        return Entity(name=name, attributes=(Attribute(name="position", candidates=position),))
    g = BeliefGraph(entities=(shape("circle", {"left": 0.5, "right": 0.5}),
                              shape("square", {"center": 1.0})))
    assert relation_probability(g, "circle", "left of", "square") == pytest.approx(0.5)
    g2 = BeliefGraph(entities=(shape("circle", {"left": 0.5, "center": 0.5}),
                               shape("square", {"center": 1.0})))
    # the shapes cannot share the center, so the circle must be on the left
    assert relation_probability(g2, "circle", "left of", "square") == pytest.approx(1.0)
    assert relation_probability(g2, "square", "right of", "circle") == pytest.approx(1.0)
    assert relation_probability(g2, "circle", "above", "square") == 0.0
    scene = Scene(entities=[SceneEntity(name="circle"), SceneEntity(name="square")],
                  relations=[SceneRelation(subject="circle", predicate="left of",
                                           object="square")])
    assert belief_nll(g, scene) == pytest.approx(0.5 * math.log(2))  # relation weight 0.5


def test_fact_coverage_counts_atomic_facts(graph):
    scene = Scene(entities=[CIRCLE, SceneEntity(name="square")])
    # facts: circle present, square present, colour, position, size → the belief holds
    # "circle present" and "position left" (colour and size are 50/50, square is missing)
    assert fact_coverage(graph, scene) == pytest.approx(2 / 5)
    assert fact_coverage(graph.pin("circle", "color", "blue"), scene) == pytest.approx(3 / 5)
    assert fact_coverage(graph, Scene(entities=[])) == 1.0


def test_synonyms_count_with_a_matcher(graph):
    scene = Scene(entities=[SceneEntity(name="circle", attributes={"color": "crimson"})])
    red = graph.pin("circle", "color", "red")
    assert fact_coverage(red, scene) == pytest.approx(1 / 2)
    assert fact_coverage(red, scene, match=lambda a, b: {a, b} == {"red", "crimson"}) == 1.0
    # the attribute name itself is never matched loosely
    hue = Scene(entities=[SceneEntity(name="circle", attributes={"hue": "red"})])
    assert fact_coverage(red, hue, match=lambda a, b: True) == pytest.approx(1 / 2)


def test_embedding_matcher_uses_cosine_and_caches():
    vectors = {"red": [1.0, 0.0], "crimson": [0.95, 0.1], "blue": [0.0, 1.0]}
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return [vectors[t] for t in texts]

    match = embedding_matcher(embed, threshold=0.9)
    assert match("red", "crimson") and not match("red", "blue")
    assert match("red", "crimson")
    assert sorted(t for c in calls for t in c) == ["blue", "crimson", "red"]


def test_questions_to_reach():
    assert questions_to_reach([0.2, 0.5, 0.8, 0.9], 0.8) == 2
    assert questions_to_reach([0.2, 0.5], 0.8) is None
