"""The implicit reward against a hand computation, DPO and SCIR steps on a tiny decoder."""

from __future__ import annotations

import math

import pytest
import torch
from tinmen.agents.judge import losses, rubric, tiny
from tinmen.agents.judge.tasks import make_tasks
from tinmen.agents.judge.train import (
    TrainPair,
    UpdateConfig,
    dpo_update,
    option_logps,
    response_logps,
)

CONFIG = tiny.TinyConfig(hidden=16, layers=1, heads=2, sft_steps=0)


@pytest.fixture(scope="module")
def tok():
    return tiny.build_tokenizer()


def _model(tok, seed):
    return tiny.build_model(tok, CONFIG.model_copy(update={"seed": seed})).eval()


def _hand_logprob(model, ids: list[int], start: int) -> float:
    """Σ_i log softmax(logits(prefix_<i))[token_i] for the tokens from ``start`` on,
    one forward pass per prefix — independent of the batched implementation."""
    total = 0.0
    with torch.no_grad():
        for i in range(start, len(ids)):
            logits = model(input_ids=torch.tensor([ids[:i]])).logits[0, -1]
            total += float(logits[ids[i]] - torch.logsumexp(logits, -1))
    return total


def test_implicit_reward_matches_a_hand_computation(tok):
    policy, ref = _model(tok, 1), _model(tok, 2)
    prompt, response = "Q: reverse abc\nA: ", "cba"
    p_ids, r_ids = tiny.encode(tok, prompt), tiny.encode(tok, response + tiny.EOS)
    full = p_ids + r_ids
    hand_pol, hand_ref = _hand_logprob(policy, full, len(p_ids)), _hand_logprob(ref, full,
                                                                                 len(p_ids))
    with torch.no_grad():
        pol = response_logps(policy, tok, [prompt], [response])
        ref_lp = response_logps(ref, tok, [prompt], [response])
    assert float(pol[0]) == pytest.approx(hand_pol, abs=1e-4)
    assert float(ref_lp[0]) == pytest.approx(hand_ref, abs=1e-4)
    reward = losses.implicit_reward(pol, ref_lp, beta=0.1)
    assert float(reward[0]) == pytest.approx(0.1 * (hand_pol - hand_ref), abs=1e-5)


def test_padding_does_not_change_sequence_logprobs(tok):
    model = _model(tok, 3)
    prompts, responses = ["Q: sort 3 1 2\nA: ", "Q: upper ab\nA: "], ["1 2 3", "AB"]
    with torch.no_grad():
        both = response_logps(model, tok, prompts, responses)
        alone = [response_logps(model, tok, [p], [r]) for p, r in zip(prompts, responses)]
    assert torch.allclose(both, torch.cat(alone), atol=1e-4)


def test_dpo_loss_and_irm_preference_hand_values():
    pw, pl, rw, rl = (torch.tensor([x]) for x in (-2.0, -5.0, -3.0, -4.0))
    margin = 0.1 * ((-2.0 + 3.0) - (-5.0 + 4.0))
    assert float(losses.dpo_loss(pw, pl, rw, rl, 0.1)) == pytest.approx(
        -math.log(1 / (1 + math.exp(-margin))))
    assert float(losses.irm_preference(pw, pl, rw, rl, 0.1)) == pytest.approx(
        1 / (1 + math.exp(-margin)))


def test_grm_preference_matches_the_pointwise_formula():
    lw, ll = torch.randn(2, 6), torch.randn(2, 6)
    got = losses.grm_preference(lw, ll)
    for i in range(2):
        expect = rubric.prob_better(torch.softmax(lw[i], -1).tolist(),
                                    torch.softmax(ll[i], -1).tolist())
        assert float(got[i]) == pytest.approx(expect, abs=1e-6)


def test_consistency_penalty_is_zero_only_when_beliefs_agree():
    p = torch.tensor([0.2, 0.7])
    assert float(losses.consistency_penalty(p, p)) == pytest.approx(0.0, abs=1e-7)
    assert float(losses.consistency_penalty(p, 1 - p)) > 0.1


def _pair(chosen="cba", rejected="abc", kept=True):
    task = make_tasks(2, seed=0)[1]  # a "reverse" task
    return TrainPair(prompt=rubric.task_prompt(task), chosen=chosen, rejected=rejected,
                     judge_chosen=rubric.judge_prompt(task, chosen),
                     judge_rejected=rubric.judge_prompt(task, rejected), kept=kept)


def _margin(model, tok, pair):
    with torch.no_grad():
        lp = response_logps(model, tok, [pair.prompt] * 2, [pair.chosen, pair.rejected])
    return float(lp[0] - lp[1])


def test_a_dpo_step_moves_the_preference_towards_the_chosen_answer(tok):
    model, pair = _model(tok, 4), _pair()
    before = _margin(model, tok, pair)
    stats = dpo_update(model, tok, [pair], UpdateConfig(lr=1e-2, epochs=3),
                       rubric.score_options())
    assert stats.steps == 3 and stats.pairs_trained == 1
    assert _margin(model, tok, pair) > before + 0.1


def test_plain_dpo_ignores_dropped_pairs(tok):
    model, pair = _model(tok, 5), _pair(kept=False)
    before = [p.clone() for p in model.parameters()]
    stats = dpo_update(model, tok, [pair], UpdateConfig(variant="srlm"), rubric.score_options())
    assert stats.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_scir_penalty_pulls_the_two_reward_models_together(tok):
    """A dropped pair gets no DPO term under SCIR, but the consistency penalty still trains
    both internal reward models towards each other."""
    model, pair = _model(tok, 6), _pair(kept=False)
    config = UpdateConfig(variant="scir", lr=1e-2, epochs=4, confidence_weight=0.0)
    ref = _model(tok, 6)
    stats = dpo_update(model, tok, [pair], config, rubric.score_options())
    assert stats.steps == 4 and stats.pairs_trained == 0
    with torch.no_grad():
        judge = option_logps(model, tok, [pair.judge_chosen, pair.judge_rejected],
                             rubric.score_options())
        p_grm = losses.grm_preference(judge[:1], judge[1:])
        pol = response_logps(model, tok, [pair.prompt] * 2, [pair.chosen, pair.rejected])
        old = response_logps(ref, tok, [pair.prompt] * 2, [pair.chosen, pair.rejected])
        p_irm = losses.irm_preference(pol[:1], pol[1:], old[:1], old[1:], 0.1)
    # P_irm starts at exactly 0.5 (policy = reference); it must have moved towards P_grm
    assert (float(p_irm) - 0.5) * (float(p_grm) - 0.5) > 0


def _chosen_logp(model, tok, pair):
    with torch.no_grad():
        return float(response_logps(model, tok, [pair.prompt], [pair.chosen])[0])


def test_the_nll_term_raises_the_chosen_answer_more_than_dpo_alone(tok):
    """DPO only widens the margin (it may lower both sides); DPO + NLL (Pang et al. 2024)
    also pulls the chosen answer's own likelihood up."""
    pair, gains = _pair(), {}
    for weight in (0.0, 1.0):
        model = _model(tok, 7)
        before = _chosen_logp(model, tok, pair)
        dpo_update(model, tok, [pair], UpdateConfig(lr=1e-2, epochs=3, nll_weight=weight),
                   rubric.score_options())
        gains[weight] = _chosen_logp(model, tok, pair) - before
    assert gains[1.0] > 0
    assert gains[1.0] > gains[0.0] + 0.1


def test_the_seed_models_instruction_data_is_a_fixed_set():
    """``ift_examples=K``: every instruction example comes from the same K tasks (the paper's
    small IFT set), while judge examples keep drawing fresh tasks."""
    from itertools import islice

    config = tiny.TinyConfig(sft_steps=0, ift_examples=5, judge_share=0.5, seed=3)
    examples = list(islice(tiny.sft_examples(config), 400))
    instructions = {p for p, _ in examples if p.startswith("Q:")}
    judged = {p.split("\nR:")[0] for p, _ in examples if p.startswith("J:")}
    assert len(instructions) <= 5 and len(judged) > 50
    unlimited = list(islice(tiny.sft_examples(config.model_copy(update={"ift_examples": 0})),
                            400))
    assert len({p for p, _ in unlimited if p.startswith("Q:")}) > 50
