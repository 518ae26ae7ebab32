"""User edits: each verb applied (pinned, source user_edit), each mistake a one-line error."""

from __future__ import annotations

import pytest
from tinmen.agents.t2i.edits import apply_edit, is_edit, parse_edit

from tinmen.errors import BeliefEditError


def test_set_pins_the_slot_as_a_user_edit(graph):
    edited, subject = apply_edit(graph, "set circle.color=red")
    slot = edited.attribute("circle", "color")
    assert subject == "circle.color"
    assert slot.candidates == {"red": 1.0, "blue": 0.0} and slot.pinned
    assert slot.source == "user_edit"
    # a vocabulary value that was not yet a candidate joins the slot
    assert apply_edit(graph, "SET circle.color = green")[0].slot(
        "circle", "color").best == ("green", 1.0)


def test_drop_and_add(graph):
    assert apply_edit(graph, "drop circle")[0].entities == ()
    added, subject = apply_edit(graph, "add star")
    star = added.entity("star")
    assert subject == "star" and star.pinned and star.source == "user_edit"
    assert {a.name for a in star.attributes} == {"color", "size", "position"}
    assert not any(a.pinned for a in star.attributes)


def test_add_with_a_value_creates_entity_and_slot(graph):
    g, subject = apply_edit(graph, "add star.color=yellow")
    assert subject == "star.color" and g.slot("star", "color").best == ("yellow", 1.0)
    g2, _ = apply_edit(graph, "add circle.material=wooden")  # new slot on an old entity
    assert g2.attribute("circle", "material").source == "user_edit"
    assert g2.slot("circle", "material").best == ("wooden", 1.0)


@pytest.mark.parametrize("text, needle", [
    ("paint it blue", "not an edit"),
    ("set circle=red", "malformed edit"),
    ("set circle.color=", "malformed edit"),
    ("set circle.color=r3d", "malformed edit"),
    ("drop circle!", "malformed edit"),
    ("set circle.colour=red", "no slot circle.colour"),
    ("set cube.color=red", "no slot cube.color"),
    ("set circle.color=sparkly", "'sparkly' is not a candidate of circle.color"),
    ("drop star", "no entity 'star' to drop"),
    ("add circle", "already in the graph"),
    ("add circle.texture=rough", "unknown attribute 'texture'"),
])
def test_bad_edits_fail_in_one_line(graph, text, needle):
    with pytest.raises(BeliefEditError, match=needle) as info:
        apply_edit(graph, text)
    assert "\n" not in str(info.value)


def test_edit_detection_and_parsing():
    assert is_edit("set a.b=c") and is_edit("  drop x") and not is_edit("red")
    edit = parse_edit("add image style.style=cartoon")
    assert (edit.entity, edit.attribute, edit.value) == ("image style", "style", "cartoon")
