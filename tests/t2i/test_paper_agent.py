"""Fidelity to Hahn et al. (issue #15 items 1–4), on the scripted stand-in model: the Ag3
policy (the LLM writes the question from the belief and the dialogue), the free-text LLM
user read back through the parser, the argmax-scene coverage beside the strict one, and
the reference stop rule. The scripted model proves the pipeline, not the paper."""

from __future__ import annotations

import json
import sqlite3

import pytest
from cli_errors import one_line_error
from tinmen.agents.t2i import policies, prompts
from tinmen.agents.t2i.answers import read_answer
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity
from tinmen.agents.t2i.facts import PRESENT, UNSPECIFIED, Fact
from tinmen.agents.t2i.loop import make_answer_reader, make_parser, simulate
from tinmen.agents.t2i.metrics import argmax_fact_coverage, fact_coverage
from tinmen.agents.t2i.policies import Action
from tinmen.agents.t2i.scenes import Scene, synthetic_items
from tinmen.agents.t2i.users import Answer, FreeTextLLMUser, OracleUser
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.t2i_eval import evaluate_items
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

SCRIPTED = {"parser": resolve_spec("scripted:t2i"), "questioner": resolve_spec("scripted:t2i"),
            "user": resolve_spec("scripted:t2i"), "t2i": resolve_spec("shapes-renderer")}
FLAGS = ["-m", "parser=scripted:t2i", "-m", "questioner=scripted:t2i",
         "-m", "user=scripted:t2i"]
LONG = "a small blue circle on the left, on a white background"


class DontKnow:
    """A user who answers every question in free text, and never says anything."""

    def answer(self, action: Action) -> Answer:
        return Answer(text="I don't know.", value="I don't know.", source="llm-free")


def attribute(entity: str, name: str) -> Action:
    return Action(kind="attribute", question=f"What {name} is the {entity}?", entity=entity,
                  attribute=name, target=f"{entity}.{name}")


# --------------------------------------------------------------------------- item 1: Ag3
def test_belief_llm_is_kept_as_an_alias_of_belief_llm_template(models, graph):
    old = policies.make_policy("belief-llm", models)(graph, [])
    new = policies.make_policy("belief-llm-template", models)(graph, [])
    assert old == new and old.target == "circle.color"  # the graph still picks the slot
    assert policies.canonical("belief-llm") == "belief-llm-template"


def test_ag3_prompt_shows_every_candidate_probability_and_the_dialogue(graph):
    text = prompts.belief_text(graph)
    assert "- circle.color (importance 1.0): red 0.50, blue 0.50" in text
    assert "- circle.position (importance 0.8): left 0.90, right 0.10" in text
    history = [{"question": "What size is the circle?", "answer": "small",
                "text": "It is small."}]
    content = prompts.ag3_prompt("a circle", text, history)[0]["content"]
    assert text in content
    assert "User: a circle\nAgent: What size is the circle?\nUser: It is small." in content


def test_ag3_writes_a_free_question_that_names_no_slot(models, graph):
    ag3 = policies.make_policy("ag3", models)
    first = ag3(graph, [])
    assert (first.kind, first.target, first.entity, first.options) == ("free", "", "", ())
    assert first.question == "What color is the circle?"
    second = ag3(graph, [{"question": first.question, "answer": "red"}])
    assert second.question == "What size is the circle?"  # read the dialogue; position 0.9


def test_ag3_question_changes_the_belief_only_through_the_answer(models):
    item = synthetic_items(3, seed=2)[2]
    run = simulate(make_parser(models), policies.make_policy("ag3", models), DontKnow(),
                   item.short, 2, scene=item.scene, read=make_answer_reader(models))
    assert len(run.history) == 2  # nothing said: no value asserted, only "no preference"
    assert [(f.key, f.value) for f in run.facts] == [(("diamond", "color"), UNSPECIFIED),
                                                     (("diamond", "size"), UNSPECIFIED)]
    assert [t.fact_coverage for t in run.turns] == [run.turns[0].fact_coverage] * 3
    told = simulate(make_parser(models), policies.make_policy("ag3", models),
                    OracleUser(item.scene), item.short, 2, scene=item.scene)
    assert told.facts and told.turns[-1].fact_coverage > told.turns[0].fact_coverage


# --------------------------------------------------------------------------- item 2: free-text user
def test_free_text_user_answers_in_a_sentence_the_parser_reads_back(models):
    user = FreeTextLLMUser(models, "user", LONG)
    answer = user.answer(Action(kind="free", question="What color is the circle?"))
    assert (answer.text, answer.source) == ("The circle is blue.", "llm-free")
    belief = BeliefGraph(prompt="a circle", entities=(Entity(name="circle", attributes=(
        Attribute(name="color", candidates={"red": 0.5, "blue": 0.5}),)),
        Entity(name="background", kind="background", attributes=(
            Attribute(name="color", candidates={"white": 0.5, "black": 0.5}),))))
    reading = read_answer(models, "parser", belief, Action(kind="free", question="?"),
                          answer.text)
    assert reading.facts == [Fact(entity="circle", attribute="color", value="blue")]
    assert reading.sentence == "The circle is blue."  # the parser's sentence, recorded


@pytest.mark.parametrize("action, text, facts", [
    (attribute("circle", "color"), "Red.", [Fact(entity="circle", attribute="color",
                                                 value="red")]),
    (attribute("circle", "color"), "It should be red, and on the left.", [
        Fact(entity="circle", attribute="color", value="red"),
        Fact(entity="circle", attribute="position", value="left")]),
    (Action(kind="binary", question="Is the circle red?", entity="circle", attribute="color",
            candidate="red", target="circle.color"), "No, it is blue.",
     [Fact(entity="circle", attribute="color", value="blue")]),  # the "no" is superseded
    (Action(kind="binary", question="Is the circle red?", entity="circle", attribute="color",
            candidate="red", target="circle.color"), "No.",
     [Fact(entity="circle", attribute="color", value="red", negated=True)]),
    (attribute("circle", "color"), "I don't know.",
     [Fact(entity="circle", attribute="color", value=UNSPECIFIED)]),  # never asked again
    (attribute("circle", "color"), "The probability of the circle being red is 1/4.",
     [Fact(entity="circle", attribute="color", value=UNSPECIFIED)]),  # SmolLM2 wrote this
    (Action(kind="free", question="What about the background?"), "A white background.",
     [Fact(entity="background", attribute="color", value="white")]),
    (Action(kind="free", question="Anything else?"), "There is also a cloud.",
     [Fact(entity="cloud", attribute=PRESENT, value="yes")]),
    (Action(kind="free", question="Anything else?"), "Nothing, thanks.", []),
])
def test_free_text_answers_become_facts(models, graph, action, text, facts):
    belief = graph.with_entity(Entity(name="background", kind="background", attributes=(
        Attribute(name="color", candidates={"white": 0.5, "black": 0.5}),)))
    assert read_answer(models, "parser", belief, action, text).facts == facts


def test_the_model_sentence_may_attach_a_value_the_user_said_never_invent_one(models, graph):
    # "Tell me about the circle?" names no attribute: the answer alone says nothing about
    # which slot "Blue" fills; the parser's sentence ("The circle is Blue.") attaches it
    question = Action(kind="free", question="Tell me about the circle?")
    reading = read_answer(models, "parser", graph, question, "Blue.")
    assert reading.facts == [Fact(entity="circle", attribute="color", value="blue")]
    assert reading.from_sentence == ["circle.color"]
    from tinmen.models.client import LiveModels

    echo = LiveModels(models.pool, {"parser": resolve_spec("scripted:echo")})
    # echo's "sentence" is the whole prompt, example included ("The rabbit is white."):
    # neither the rabbit nor white is in the user's words, so neither is believed
    assert read_answer(echo, "parser", graph, question, "Blue.").facts == []


# --------------------------------------------------------------------------- item 3: argmax
def test_argmax_scene_fills_every_slot_the_strict_scene_leaves_empty(graph):
    strict, argmax = graph.most_likely_scene(), graph.argmax_scene()
    assert strict.entity("circle").attributes == {"position": "left"}
    assert argmax.entity("circle").attributes == {"color": "red", "position": "left",
                                                  "size": "small"}  # ties: first candidate
    scene = Scene.model_validate({"entities": [{"name": "circle", "attributes": {
        "color": "red", "position": "left"}}]})
    assert fact_coverage(graph, scene) == pytest.approx(2 / 3)
    assert argmax_fact_coverage(graph, scene) == 1.0
    absent = graph.update_entity("circle", probability=0.4)
    assert absent.argmax_scene().entities == []  # presence is still p > 0.5


# --------------------------------------------------------------------------- item 4: stop rule
def test_reference_stop_rule_needs_every_top_candidate_at_0_7(make_graph):
    fairly = make_graph(color={"red": 0.8, "blue": 0.2}, size={"small": 0.7, "large": 0.3})
    assert policies.should_stop(fairly, 1, 5, rule="reference") == (
        True, "every attribute's top candidate is ≥ 0.7")
    assert not policies.should_stop(fairly, 1, 5, rule="settled")[0]  # 0.8 is not settled
    unsure = make_graph(color={"red": 0.95, "blue": 0.05})  # size 0.5/0.5, importance 0.1
    stop, why = policies.should_stop(unsure, 1, 5, rule="reference")
    assert not stop and why == "1 slots with top candidate < 0.7: circle.size"
    assert policies.should_stop(unsure, 1, 5, rule="settled")[0]  # size is unimportant
    no_preference = unsure.with_attribute("circle", unsure.attribute("circle", "size")
                                          .model_copy(update={"importance": 0.0}))
    assert policies.should_stop(no_preference, 1, 5, rule="reference")[0]
    gone = make_graph().update_entity("circle", probability=0.05)
    assert policies.should_stop(gone, 0, 5, rule="reference")[0]
    assert policies.should_stop(unsure, 5, 5, rule="reference") == (True,
                                                                    "turn budget 5 spent")


def test_bad_stop_rule_is_one_line_and_writes_nothing(capsys, db_url):
    base = ["t2i", "eval", "--synthetic", "2", "--db", db_url, *FLAGS]
    assert "stop_rule='never'" in one_line_error(capsys, base + ["--stop-rule", "never"])
    scene = json.dumps({"short": "a circle", "scene": {"entities": [{"name": "circle"}]}})
    assert "stop_rule" in one_line_error(capsys, ["run", "t2i", "--input", scene, "--db",
                                                   db_url, *FLAGS, "--set", "stop_rule=x"])
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT (SELECT COUNT(*) FROM study) + "
                          "(SELECT COUNT(*) FROM session)").fetchone() == (0,)


# --------------------------------------------------------------------------- the eval and the store
def test_one_eval_compares_users_and_stop_rules_with_both_coverages_in_sql(tmp_path):
    from tinmen.storage import Store

    path = tmp_path / "arms.db"
    summary = evaluate_items(Store.open(f"sqlite:///{path}"), synthetic_items(1, seed=1),
                             SCRIPTED, policy=["ag3"], user=["oracle", "llm-free"],
                             stop_rule=["settled", "reference"], max_turns=2,
                             progress=False)
    arms = summary["by_policy"]
    assert set(arms) == {f"ag3 user={u} stop={r}" for u in ("oracle", "llm-free")
                         for r in ("settled", "reference")}
    for arm in arms.values():
        first = arm["single_turn"]
        assert first["fact_coverage_argmax"] >= first["fact_coverage"]
        assert arm["questions_to_coverage_argmax"]["mean"] is not None
    with sqlite3.connect(path) as db:  # both coverages are recorded metrics: plain SQL
        rows = db.execute(
            "SELECT json_extract(c.params, '$.stop_rule'), m.name, COUNT(*) FROM metric m "
            "JOIN session s ON s.id = m.session_id JOIN condition c ON c.id = s.condition_id "
            "WHERE m.turn = 0 AND m.name IN ('fact_coverage', 'fact_coverage_argmax') "
            "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    assert rows == [("reference", "fact_coverage", 2), ("reference", "fact_coverage_argmax", 2),
                    ("settled", "fact_coverage", 2), ("settled", "fact_coverage_argmax", 2)]


def test_ag3_with_the_free_text_user_replays_exactly(store):
    item = synthetic_items(3, seed=4)[1]
    result = run_session(store, "t2i", item.model_dump(mode="json"), SCRIPTED,
                         pool=ModelPool(), options={"policy": "ag3", "user": "llm-free",
                                                    "stop_rule": "reference",
                                                    "max_turns": 3})
    with store.unit_of_work() as uow:
        roles = [c.role for c in uow.calls.for_session(result.session_id)]
    assert roles.count("user") == 3 and "questioner" in roles  # every answer is a model call
    assert result.output["questions"][0] == "What color is the square?"
    report = replay_session(store, result.session_id)
    assert report.identical, report.differences
