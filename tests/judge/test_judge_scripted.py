"""The scripted noisy-oracle judge (the default auditor) and the synthetic judges."""

from __future__ import annotations

import numpy as np
import pytest
from tinmen.agents.judge import rubric
from tinmen.agents.judge.scripted import NoisyOracleJudge, confusion_row
from tinmen.agents.judge.synthetic import judge_matrices
from tinmen.agents.judge.tasks import make_tasks, oracle_score


@pytest.mark.parametrize("style", ["compact", "rubric"])
def test_noisy_judge_centres_on_the_oracle_in_both_prompt_styles(style):
    judge = NoisyOracleJudge(quality=0.6)
    for task in make_tasks(5, seed=2):
        for response in (task.answer, task.answer + " ", ""):
            logps = judge.score(rubric.judge_prompt(task, response, style),
                                rubric.score_options(style))
            probs = rubric.normalise(logps)
            assert int(np.argmax(probs)) == oracle_score(task, response)
            assert max(probs) == pytest.approx(0.6)


def test_noisy_judge_verdicts_are_seeded_and_parsable():
    task = make_tasks(1, seed=0)[0]
    prompt = rubric.judge_prompt(task, task.answer, "rubric")
    judge = NoisyOracleJudge()
    verdicts = [judge.respond(prompt, None, seed) for seed in range(20)]
    assert verdicts == [judge.respond(prompt, None, seed) for seed in range(20)]
    assert all(rubric.parse_score(v) is not None for v in verdicts)


def test_an_unknown_prompt_gets_a_uniform_row():
    assert NoisyOracleJudge().row("what?") == pytest.approx([1 / 6] * 6)


def test_confusion_rows_and_synthetic_judges_are_distributions():
    assert sum(confusion_row(3, 0.7)) == pytest.approx(1.0)
    for matrix in judge_matrices().values():
        assert np.allclose(matrix.sum(-1), 1.0) and (matrix >= 0).all()


def test_noisy_judge_reads_the_paper_prompts_too():
    task = make_tasks(1, seed=2)[0]
    for style in ("paper", "paper-compact"):
        assert NoisyOracleJudge().true_score(rubric.judge_prompt(task, task.answer, style)) == 5
