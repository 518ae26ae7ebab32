"""The tiny seed model's judge-prompt switch: what SFT teaches, and cache keys that stay."""

from __future__ import annotations

import hashlib
import json

from tinmen.agents.judge import rubric, tiny
from tinmen.agents.judge.tasks import make_tasks, oracle_score


def test_compact_seed_keys_are_unchanged_by_the_judge_prompt_field():
    config = tiny.TinyConfig(sft_steps=40, seed=3)
    fields = {k: v for k, v in config.model_dump().items() if k != "judge_prompt"}
    old = hashlib.sha256(json.dumps({"v": 1, **fields}, sort_keys=True).encode()).hexdigest()
    assert config.key() == old[:16]  # checkpoints cached before the switch are still found
    assert tiny.TinyConfig(sft_steps=40, seed=3, judge_prompt="paper").key() != config.key()


def test_paper_seed_sft_teaches_a_justification_then_the_oracle_score():
    task = make_tasks(1, seed=9)[0]
    prompt, target = tiny.judge_example(task, task.answer + " ", "paper-compact")
    assert prompt.endswith("\nJustify:") and target.endswith(tiny.EOS)
    verdict = target.removesuffix(tiny.EOS)
    assert rubric.parse_score(verdict) == oracle_score(task, task.answer + " ") == 4
    assert verdict.startswith(" relevant, shaped, elements right, correct, not exact.")
    assert tiny.TinyConfig(judge_prompt="paper").style == "paper-compact"


def test_paper_sft_stream_yields_only_paper_judge_examples():
    config = tiny.TinyConfig(judge_prompt="paper", judge_share=1.0, seed=1)
    stream = tiny.sft_examples(config)
    for _ in range(20):
        prompt, target = next(stream)
        assert prompt.endswith("\nJustify:") and "\nScore: " in target
