"""The weight-free default image generator draws what the prompt says, where it says."""

from __future__ import annotations

from tinmen.models.backends.renderer import RGB, ShapesRenderer, parse_clauses
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec


def test_parse_clauses():
    objects, bg = parse_clauses("a large red circle on the left, a cake on the right, "
                                "on a gray background")
    assert bg == "gray"
    assert objects == [{"name": "circle", "color": "red", "size": "large", "slot": 0},
                       {"name": "cake", "slot": 2}]


def test_colours_land_where_the_prompt_puts_them():
    image = ShapesRenderer(size=120).generate_images(
        ["a large red square on the left, a large blue square on the right, "
         "on a black background"], [0], {})[0]
    assert image.getpixel((20, 60)) == RGB["red"]
    assert image.getpixel((100, 60)) == RGB["blue"]
    assert image.getpixel((60, 5)) == RGB["black"]


def test_images_go_through_the_pool_and_are_content_addressed():
    models = LiveModels(ModelPool(), {"t2i": resolve_spec("shapes-renderer")})
    a = models.generate_image("t2i", "a small green star")
    b = models.generate_image("t2i", "a small green star")
    assert a.size == (256, 256) and a.info["sha256"] == b.info["sha256"]
    assert models.generate_image("t2i", "a small red star").info["sha256"] != a.info["sha256"]
