"""Rubric parsing, the oracle's additive rubric, and judge-distribution arithmetic."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tinmen.agents.judge import rubric
from tinmen.agents.judge.tasks import (
    KINDS,
    corrupt,
    make_task,
    make_tasks,
    oracle_score,
    task_from_instruction,
)


@pytest.mark.parametrize("text,expected", [
    ("The answer is right.\nScore: 4", 4),
    ("Score: 2 ... on reflection Score: 5", 5),  # the rubric asks to *conclude* with it
    ("score: **3**", 3),
    ("Score = 0", 0),
    (" 4", 4),  # the compact judge's verdict
    ("5/5", 5),
    ("Score: 6", None),
    ("Score: 3.5", None),
    ("Score: -1", None),
    ("no verdict here", None),
    ("", None),
])
def test_parse_score(text, expected):
    assert rubric.parse_score(text) == expected


@given(st.integers(0, 5), st.text(alphabet="abc .,\n", max_size=40))
def test_parse_score_reads_the_concluding_verdict(score, justification):
    assert rubric.parse_score(f"{justification}\nScore: {score}") == score


def test_average_score_skips_unparsable_verdicts():
    assert rubric.average_score(["Score: 4", "garbage", " 2"]) == 3.0
    assert rubric.average_score(["garbage"]) is None


def test_prompt_styles_and_options():
    task = make_tasks(1, seed=0)[0]
    compact = rubric.judge_prompt(task, "x", "compact")
    assert compact.endswith("Score:") and task.instruction in compact
    chat = rubric.judge_prompt(task, "x", "rubric")
    assert chat[0]["role"] == "user" and "<response>x</response>" in chat[0]["content"]
    assert rubric.score_options("compact")[3] == " 3"
    assert rubric.score_options("rubric")[3] == "Score: 3"


@given(st.lists(st.floats(0.01, 1), min_size=6, max_size=6),
       st.lists(st.floats(0.01, 1), min_size=6, max_size=6))
def test_prob_better_is_a_complementary_preference(a, b):
    p, q = [x / sum(a) for x in a], [x / sum(b) for x in b]
    assert rubric.prob_better(p, q) + rubric.prob_better(q, p) == pytest.approx(1.0)
    assert rubric.prob_better(p, p) == pytest.approx(0.5)


def test_distribution_summaries():
    probs = rubric.normalise([0.0, 0.0, -50, -50, -50, -50])
    assert rubric.expected_score(probs) == pytest.approx(0.5)
    assert rubric.entropy(probs) == pytest.approx(0.693, abs=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_oracle_rubric_is_additive_and_graded(kind):
    task = make_task(kind, random.Random(3), "t")
    assert oracle_score(task, task.answer) == 5
    assert oracle_score(task, task.answer + " ") == 4  # correct, but with extraneous text
    assert oracle_score(task, "") == 0
    assert oracle_score(task, "%%%") == 0  # not relevant: nothing of the answer's kind
    assert oracle_score(task, corrupt(task, 1, random.Random(0))) <= 1  # wrong format


@given(st.integers(0, 10_000), st.sampled_from(KINDS))
def test_instruction_text_recovers_the_task(seed, kind):
    task = make_task(kind, random.Random(seed), "t")
    parsed = task_from_instruction(task.instruction)
    assert parsed is not None and parsed.answer == task.answer and parsed.kind == kind


# --------------------------------------------------------------------------- paper prompt
def test_paper_prompt_asks_for_a_justification_before_the_score():
    task = make_tasks(1, seed=3)[0]
    text = rubric.judge_prompt(task, "1 2 3", "paper")[0]["content"]
    assert "additive 5-point" in text and f"User: {task.instruction}" in text
    assert text.index("Briefly justify") < text.index('"Score: <total points>"')
    assert rubric.judge_prompt(task, "1 2 3", "paper-compact").endswith("\nJustify:")


@pytest.mark.parametrize("judge_prompt,tiny,style", [
    ("compact", True, "compact"), ("compact", False, "rubric"),
    ("paper", True, "paper-compact"), ("paper", False, "paper")])
def test_style_for_picks_the_frame_by_policy_kind(judge_prompt, tiny, style):
    assert rubric.style_for(judge_prompt, tiny) == style


def test_tiny_paper_verdicts_justify_then_score_and_parse_back():
    rng = random.Random(0)
    for task in make_tasks(25, seed=4):
        response = corrupt(task, rng.randint(0, 5), rng)
        from tinmen.agents.judge.tasks import oracle_points

        verdict = rubric.verdict_text(oracle_score(task, response), "paper-compact",
                                      oracle_points(task, response))
        assert rubric.parse_score(verdict) == oracle_score(task, response)
        prefix = rubric.verdict_prefix(verdict)
        assert verdict.startswith(prefix) and prefix.endswith(".\n")
        assert verdict[len(prefix):] == f"Score: {oracle_score(task, response)}"


def test_justification_names_the_points_met_then_the_first_missed():
    assert rubric.justification([True, True, False, False, False]) == \
        "relevant, shaped, not elements right."
    assert rubric.justification([True] * 5) == \
        "relevant, shaped, elements right, correct, exact."


@pytest.mark.parametrize("verdict,prefix,score", [
    ("It sorts the digits.\nScore: 4", "It sorts the digits.\n", 4),
    ("rambling with no score at all", "rambling with no score at all\n", None),
    ("Score: seven", "", None),  # garbled: no score, and the options follow an empty prefix
    ("", "", None),
])
def test_a_verdict_without_a_readable_score_is_a_parse_failure_not_an_error(verdict, prefix,
                                                                             score):
    assert rubric.parse_score(verdict) == score
    assert rubric.verdict_prefix(verdict) == prefix
    assert rubric.average_score([verdict, verdict]) == score


def test_score_options_follow_the_justification_prefix():
    options = rubric.score_options("paper-compact", " relevant.\n")
    assert options[0] == " relevant.\nScore: 0" and options[-1] == " relevant.\nScore: 5"
    assert rubric.score_options("compact") == [f" {s}" for s in rubric.SCORES]
