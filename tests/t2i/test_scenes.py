"""Scenes and the synthetic benchmark: the exact shapes-world vocabulary, sampler
invariants, texts the renderer and the parser read back, and the JSONL loader."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.agents.t2i import scenes, vocabulary
from tinmen.agents.t2i.parsing import parse_prompt
from tinmen.agents.t2i.scenes import (
    Scene,
    describe,
    load_items,
    relation_fact,
    sample_scene,
    synthetic_items,
)
from tinmen.models.backends.renderer import parse_clauses

from tinmen.errors import ConfigError

DATA = Path(__file__).parent / "data" / "unseen_scenes.jsonl"


def test_shapes_world_vocabulary_is_exact():
    assert vocabulary.COLORS == ("red", "green", "blue", "yellow", "purple", "orange",
                                 "white", "black")
    assert vocabulary.SHAPES == ("circle", "square", "triangle", "star", "diamond")
    assert vocabulary.SIZES == ("small", "large")
    assert vocabulary.POSITIONS == ("left", "center", "right")
    assert vocabulary.BACKGROUNDS == ("white", "gray", "black")
    assert {"color", "size", "position", "material", "style"} <= set(vocabulary.VOCABULARY)


@given(st.integers(0, 10_000))
@settings(max_examples=80, deadline=None)
def test_sampled_scenes_obey_the_world_rules(seed):
    scene = sample_scene(random.Random(seed))
    shapes = [e for e in scene.entities if e.name != "background"]
    background = scene.value("background", "color")
    assert 1 <= len(shapes) <= 3 and background in vocabulary.BACKGROUNDS
    assert len({e.name for e in shapes}) == len(shapes)
    assert len({e.attributes["position"] for e in shapes}) == len(shapes)
    for e in shapes:
        assert e.name in vocabulary.SHAPES and e.attributes["color"] != background
        assert e.attributes["color"] in vocabulary.COLORS
        assert e.attributes["size"] in vocabulary.SIZES
    assert len(scene.relations) == len(shapes) * (len(shapes) - 1) // 2


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_short_prompt_names_every_shape_and_at_most_one_attribute(seed):
    item = synthetic_items(1, seed=seed)[0]
    words = item.short.split()
    shapes = [e.name for e in item.scene.entities if e.name != "background"]
    assert [w for w in words if w in vocabulary.SHAPES] == shapes
    stated = [w for w in words if w in vocabulary.COLORS + vocabulary.SIZES]
    assert len(stated) <= 1
    assert item.long == describe(item.scene)


def test_long_descriptions_are_read_back_by_renderer_and_parser(models):
    for item in synthetic_items(10, seed=3):
        objects, background = parse_clauses(item.long)
        assert background == item.scene.value("background", "color")
        for obj in objects:
            truth = item.scene.entity(obj["name"]).attributes
            assert (obj["color"], obj["size"]) == (truth["color"], truth["size"])
        belief = parse_prompt(models, "parser", item.long).belief
        assert belief.most_likely_scene().facts() == item.scene.facts()


def test_describe_everyday_scenes():
    scene = Scene.model_validate({"entities": [
        {"name": "cat", "attributes": {"color": "gray", "size": "small", "position": "left",
                                       "pattern": "striped"}},
        {"name": "sofa", "attributes": {"color": "brown", "material": "fabric"}},
        {"name": "image style", "attributes": {"style": "watercolor"}},
        {"name": "background", "attributes": {"color": "white"}}],
        "relations": [{"subject": "cat", "predicate": "on", "object": "sofa"}]})
    assert describe(scene) == ("a small gray cat with striped pattern on the left, "
                               "a brown fabric sofa, the cat is on the sofa, "
                               "in a watercolor style, on a white background")
    assert ("present", "image style") not in scene.facts()
    assert relation_fact("b", "right of", "a") == relation_fact("a", "left of", "b")


def test_load_items_reads_the_unseen_scenes():
    items = load_items(DATA)
    assert len(items) == 6 and items[-1].scene is None
    assert items[0].scene.relation("square", "star") == "left of"  # stored as "right of"


@pytest.mark.parametrize("lines, needle", [
    (["{oops"], ":2: not JSON"),
    ([json.dumps({"short": "a circle"})], ":2: field 'id'"),
    ([json.dumps({"id": "x", "short": "s", "scene": {"entities": "none"}})],
     ":2: field 'scene.entities'"),
    ([json.dumps({"id": "a", "short": "again"})], "item id 'a' appears twice"),
])
def test_bad_jsonl_names_the_line(tmp_path, lines, needle):
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([json.dumps({"id": "a", "short": "a circle"})] + lines))
    with pytest.raises(ConfigError, match=needle) as info:
        load_items(path)
    assert "\n" not in str(info.value)


def test_empty_or_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ConfigError, match="holds no items"):
        load_items(tmp_path / "empty.jsonl")
    with pytest.raises(ConfigError, match="cannot read items file"):
        load_items(tmp_path / "nope.jsonl")
    assert scenes.Item(id="x", short="s").scene is None
