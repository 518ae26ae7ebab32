"""The method's own losses in torch: sequence log-probs, the implicit reward, DPO, SCIR.

* implicit reward (Rafailov et al. 2023): r(x, y) = β · log π(y|x) / π_ref(y|x), with log π
  the *sum* of the response tokens' log-probs (the end-of-sequence token included, so a
  model can also be preferred for stopping);
* P_irm(y_w ≻ y_l) = σ(r_w − r_l) and the DPO loss −log P_irm;
* P_grm(y_w ≻ y_l) from the model's own judge distributions over 0..5 points;
* the SCIR consistency penalty: symmetric KL between the two Bernoulli beliefs.

Everything works on any causal LM that maps ``input_ids`` / ``attention_mask`` to
``.logits`` (a transformers model, or a plain module returning an object with logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

EPS = 1e-6


@dataclass
class Batch:
    """Right-padded prompt+response token ids; ``target`` marks the response tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    target: torch.Tensor  # bool, True where the token is part of the scored response


def make_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
               pad_id: int) -> Batch:
    """Concatenate each prompt with its response and pad on the right."""
    seqs = [list(p) + list(r) for p, r in zip(prompts, responses, strict=True)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    target = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (p, s) in enumerate(zip(prompts, seqs)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        target[i, len(p): len(s)] = True
    return Batch(ids, mask, target)


def token_logprobs(model: Any, batch: Batch) -> torch.Tensor:
    """Log-prob of every token given its prefix (position 0 gets 0); shape (B, T)."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    return F.pad(picked, (1, 0))


def sequence_logprob(model: Any, batch: Batch) -> torch.Tensor:
    """Sum of the response tokens' log-probs, one value per row."""
    return (token_logprobs(model, batch) * batch.target).sum(-1)


def implicit_reward(policy_logp: torch.Tensor, ref_logp: torch.Tensor,
                    beta: float = 0.1) -> torch.Tensor:
    """r = β · (log π(y|x) − log π_ref(y|x))."""
    return beta * (policy_logp - ref_logp)


def irm_preference(policy_w: torch.Tensor, policy_l: torch.Tensor, ref_w: torch.Tensor,
                   ref_l: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """P_irm(y_w ≻ y_l) = σ(r_w − r_l)."""
    return torch.sigmoid(implicit_reward(policy_w, ref_w, beta) -
                         implicit_reward(policy_l, ref_l, beta))


def dpo_loss(policy_w: torch.Tensor, policy_l: torch.Tensor, ref_w: torch.Tensor,
             ref_l: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Per-pair DPO loss −log σ(β[(log π_w − log π_ref,w) − (log π_l − log π_ref,l)])."""
    margin = implicit_reward(policy_w, ref_w, beta) - implicit_reward(policy_l, ref_l, beta)
    return -F.logsigmoid(margin)


def grm_preference(judge_logp_w: torch.Tensor, judge_logp_l: torch.Tensor) -> torch.Tensor:
    """P_grm(y_w ≻ y_l) = P(s_w > s_l) + ½ P(s_w = s_l) from option log-probs (B, S) each."""
    p_w = F.softmax(judge_logp_w, dim=-1)
    p_l = F.softmax(judge_logp_l, dim=-1)
    joint = p_w[:, :, None] * p_l[:, None, :]  # [b, score_w, score_l]
    size = joint.shape[-1]
    above = torch.ones(size, size).tril(-1).to(joint)  # score_w > score_l
    diag = torch.eye(size).to(joint)
    return (joint * above).sum((-1, -2)) + 0.5 * (joint * diag).sum((-1, -2))


def symmetric_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) + KL(q‖p) of Bernoulli beliefs, elementwise (nats)."""
    p, q = p.clamp(EPS, 1 - EPS), q.clamp(EPS, 1 - EPS)
    return (p - q) * (torch.log(p) - torch.log(q)) + \
        (q - p) * (torch.log1p(-p) - torch.log1p(-q))


def consistency_penalty(p_grm: torch.Tensor, p_irm: torch.Tensor) -> torch.Tensor:
    """SCIR's inconsistency penalty: mean symmetric KL between the internal reward models."""
    return symmetric_kl(p_grm, p_irm).mean()
