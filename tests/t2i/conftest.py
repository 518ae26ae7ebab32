"""Fixtures for the T2I agent tests: the scripted stand-in model behind every role, and a
small hand-built belief graph whose policy scores are easy to compute by hand."""

from __future__ import annotations

import pytest
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity


@pytest.fixture(scope="module")
def models():
    from tinmen.models.client import LiveModels
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import resolve_spec

    spec = resolve_spec("scripted:t2i")
    return LiveModels(ModelPool(), {"parser": spec, "questioner": spec, "user": spec})


def circle_graph(color=None, position=None, size=None, prompt="a circle") -> BeliefGraph:
    """One circle: colour undecided, position fairly sure, size unimportant by default."""
    return BeliefGraph(prompt=prompt, entities=(Entity(name="circle", attributes=(
        Attribute(name="color", candidates=color or {"red": 0.5, "blue": 0.5}),
        Attribute(name="position", candidates=position or {"left": 0.9, "right": 0.1},
                  importance=0.8),
        Attribute(name="size", candidates=size or {"small": 0.5, "large": 0.5},
                  importance=0.1))),))


@pytest.fixture
def graph() -> BeliefGraph:
    return circle_graph()


@pytest.fixture
def make_graph():
    return circle_graph
