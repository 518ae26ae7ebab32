"""The T2I agent end to end on the scripted parser: coverage claims, replay, the terminal
CLI with edits, and the eval JSON."""

from __future__ import annotations

import io
import json

import pytest
from tinmen.agents.t2i.scenes import load_items, synthetic_items
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.t2i import AGENT
from tinmen.graphs.t2i_eval import evaluate_items
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

from tinmen.cli import main

SCRIPTED = {"parser": resolve_spec("scripted:t2i"), "questioner": resolve_spec("scripted:t2i"),
            "t2i": resolve_spec("shapes-renderer")}
UNSEEN = [
    {"id": "u1", "short": "a star and a square", "long": "a small orange star on the right, "
     "a large green square on the left, on a black background", "scene": {"entities": [
         {"name": "star", "attributes": {"color": "orange", "size": "small",
                                         "position": "right"}},
         {"name": "square", "attributes": {"color": "green", "size": "large",
                                           "position": "left"}},
         {"name": "background", "attributes": {"color": "black"}}],
         "relations": [{"subject": "square", "predicate": "left of", "object": "star"}]}},
    {"id": "u2", "short": "a diamond", "long": "a large purple diamond in the center, on a "
     "white background", "scene": {"entities": [
         {"name": "diamond", "attributes": {"color": "purple", "size": "large",
                                            "position": "center"}},
         {"name": "background", "attributes": {"color": "white"}}]}},
]


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    from tinmen.storage import Store

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('t2i')}/eval.db")
    pool = ModelPool()
    items = synthetic_items(20, seed=0)
    return {p: evaluate_items(store, items, SCRIPTED, policy=p, user="oracle", max_turns=5,
                              pool=pool, progress=False) for p in ("attribute", "binary",
                                                                   "random")}


def test_attribute_policy_doubles_single_turn_coverage(evals):
    turns = [t["fact_coverage"] for t in evals["attribute"]["turns"]]
    assert turns[-1] >= 2 * evals["attribute"]["single_turn"]["fact_coverage"]
    assert all(b >= a - 1e-12 for a, b in zip(turns, turns[1:]))


def test_attribute_policy_needs_fewer_questions_than_random(evals):
    assert (evals["attribute"]["questions_to_coverage"]["mean"]
            < evals["random"]["questions_to_coverage"]["mean"])


def test_unseen_jsonl_scenes(tmp_path):
    path = tmp_path / "unseen.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in UNSEEN))
    from tinmen.storage import Store

    summary = evaluate_items(Store.open(f"sqlite:///{tmp_path}/u.db"), load_items(path),
                             SCRIPTED, policy="attribute", user="oracle", max_turns=5,
                             progress=False)
    assert summary["turns"][-1]["fact_coverage"] >= 2 * summary["single_turn"]["fact_coverage"]


def test_bad_jsonl_names_the_line(tmp_path):
    from tinmen.errors import ConfigError

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(UNSEEN[0]) + "\n{oops\n")
    with pytest.raises(ConfigError, match="bad.jsonl:2"):
        load_items(path)


def test_t2i_session_replays_exactly(store):
    item = synthetic_items(3, seed=4)[1]
    result = run_session(store, AGENT, item.model_dump(mode="json"), SCRIPTED,
                         pool=ModelPool(), options={"policy": "binary", "max_turns": 3})
    assert result.output["image"]
    report = replay_session(store, result.session_id)
    assert report.identical, report.differences


def test_terminal_session_with_edits(capsys, monkeypatch, db_url):
    answers = "set circle.size=large\nred\nleft\nsmall\nwhite\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(answers))
    code = main(["t2i", "run", "--prompt", "a circle", "--max-turns", "3", "--db", db_url,
                 "-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "What color is the circle?" in text and "final prompt: a large red circle" in text
    shown = json.loads(_json(capsys, ["sessions", "--db", db_url]))
    sid = shown[0]["id"]
    detail = json.loads(_json(capsys, ["show", sid, "--db", db_url]))
    edits = [b for s in detail["steps"] for b in s["beliefs"] if b["source"] == "user_edit"]
    assert edits and edits[0]["value"] == "set circle.size=large"
    assert [h["response"] for h in detail["human_inputs"]][:2] == ["set circle.size=large", "red"]
    assert json.loads(_json(capsys, ["replay", sid, "--db", db_url]))["identical"]


def test_bad_edit_in_the_terminal_is_re_asked_and_logged(capsys, monkeypatch, db_url):
    monkeypatch.setattr("sys.stdin", io.StringIO("set circle.colour=red\nred\n"))
    code = main(["t2i", "run", "--prompt", "a circle", "--db", db_url, "--max-turns", "1",
                 "-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    assert "no slot circle.colour" in captured.out and "try again" in captured.out
    assert "final prompt: a red circle" in captured.out
    sid = json.loads(_json(capsys, ["sessions", "--db", db_url]))[0]["id"]
    detail = json.loads(_json(capsys, ["show", sid, "--db", db_url]))
    rejected = [b for s in detail["steps"] for b in s["beliefs"]
                if b["subject"].startswith("edit_rejected:")]
    assert rejected and "no slot circle.colour" in rejected[0]["value"]
    assert json.loads(_json(capsys, ["replay", sid, "--db", db_url]))["identical"]


def test_eval_json_shape(capsys, db_url):
    data = json.loads(_json(capsys, ["t2i", "eval", "--synthetic", "3", "--max-turns", "2",
                                     "--db", db_url, "-m", "parser=scripted:t2i",
                                     "-m", "questioner=scripted:t2i"]))
    assert data["items"] == 3 and data["policy"] == "attribute"
    assert [t["turn"] for t in data["turns"]] == [0, 1, 2]
    assert set(data["single_turn"]) == {"fact_coverage_argmax", "fact_coverage", "belief_nll"}
    assert len(data["session_ids"]) == 3


def _json(capsys, args):
    assert main(args + ["--json"]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_embedder_matches_synonyms_in_coverage(store):
    """The scene says "couch", the prompt "sofa": only the embedder (packaged MiniLM, every
    call recorded) counts the entity as covered, and the session still replays exactly."""
    item = {"id": "syn", "short": "a red sofa", "long": "", "scene": {"entities": [
        {"name": "couch", "attributes": {"color": "red"}}]}}
    pool, cover = ModelPool(), {}
    for name, extra in (("plain", {}), ("embedder", {"embedder": resolve_spec("minilm")})):
        result = run_session(store, AGENT, item, {**SCRIPTED, **extra}, pool=pool,
                             options={"policy": "attribute", "max_turns": 0})
        cover[name] = result.output["turns"][0]["fact_coverage"]
    assert cover["embedder"] > cover["plain"]
    report = replay_session(store, result.session_id)
    assert report.identical, report.differences


def test_typed_answers_become_values():
    from tinmen.agents.t2i.policies import Action
    from tinmen.graphs.t2i import human_value

    colour = Action(kind="attribute", question="What color is the circle?", entity="circle",
                    attribute="color", options=("red", "blue"))
    yes_no = Action(kind="binary", question="Is the circle red?", entity="circle",
                    attribute="color", candidate="red", options=("yes", "no"))
    assert human_value(colour, " Blue. ") == "blue" and human_value(colour, "2") == "blue"
    assert human_value(colour, "teal") == "teal"  # a value the agent had not thought of
    assert human_value(colour, "no preference") == "unspecified"
    assert human_value(colour, "9") == "9"  # out of range: taken as typed, not an option
    assert human_value(yes_no, "Y") == "yes" and human_value(yes_no, "n") == "no"


def test_pictures_every_turn_align_better_as_the_belief_fills_in(tmp_path):
    """--images each: the renderer draws the belief each turn and the packaged shapes-clip
    scores it against the hidden description; alignment rises with coverage."""
    from tinmen.storage import Store

    bindings = {**SCRIPTED, "scorer": resolve_spec("shapes-clip")}
    summary = evaluate_items(Store.open(f"sqlite:///{tmp_path}/img.db"),
                             synthetic_items(4, seed=0), bindings, policy="attribute",
                             user="oracle", max_turns=4, progress=False, images="each")
    aligned = [t["image_text_alignment"] for t in summary["turns"]]
    assert summary["single_turn"]["image_text_alignment"] == aligned[0]
    assert aligned[-1] > aligned[0] + 0.3
