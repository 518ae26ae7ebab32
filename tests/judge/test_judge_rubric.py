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
