"""One self-rewarding update: DPO on the selected pairs, plus SCIR's consistency penalty.

The policy is trained from the iteration's starting model, which is also the DPO reference
(Yuan et al.: M_{t+1} is trained from M_t with M_t as π_ref). With ``variant="scir"`` the
loss gains Zhou et al.'s inconsistency penalty on *every* non-tied pair — the symmetric KL
between the model's generative-judge preference P_grm and its implicit-reward preference
P_irm, both computed with the weights being trained so both reward models move — and a
small confidence term (binary entropy of both beliefs); the DPO term uses the kept pairs.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.judge.losses import (
    EPS,
    consistency_penalty,
    dpo_loss,
    grm_preference,
    irm_preference,
    make_batch,
    sequence_logprob,
)
from tinmen.agents.judge.pairs import Variant


class UpdateConfig(BaseModel):
    """Hyper-parameters of one DPO update (one self-rewarding iteration)."""

    model_config = ConfigDict(frozen=True)

    variant: Variant = "srlm"
    beta: float = Field(default=0.1, gt=0, description="DPO temperature β.")
    lr: float = Field(default=3e-4, gt=0)
    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=8, ge=1)
    consistency_weight: float = Field(default=1.0, ge=0, description="SCIR penalty weight.")
    confidence_weight: float = Field(default=0.05, ge=0,
                                     description="SCIR weight of the beliefs' entropy.")
    nll_weight: float = Field(default=0.0, ge=0, description="Weight of the chosen side's "
                              "length-normalised NLL added to DPO (Pang et al. 2024).")
    seed: int = 0


@dataclass(frozen=True)
class TrainPair:
    """One pair as text: the prompt, both sides, their judge prompts, whether it is kept,
    and (paper prompt) the judge's justification of each side, which the score options
    follow."""

    prompt: Any
    chosen: str
    rejected: str
    judge_chosen: Any
    judge_rejected: Any
    kept: bool = True
    prefix_chosen: str = ""
    prefix_rejected: str = ""


@dataclass
class UpdateStats:
    steps: int = 0
    dpo_loss: float = 0.0
    consistency: float = 0.0
    pairs_trained: int = 0


def render(tokenizer: Any, prompt: Any) -> str:
    """Prompt text as the pool's transformers backend renders it (chat template for lists)."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt) + "\nassistant:"


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def response_logps(model: Any, tokenizer: Any, prompts: Sequence[Any],
                   responses: Sequence[str]) -> torch.Tensor:
    """log π(y|x) summed over the response tokens and the end-of-sequence token."""
    eos = tokenizer.eos_token or ""
    batch = make_batch([_ids(tokenizer, render(tokenizer, p)) for p in prompts],
                       [_ids(tokenizer, r + eos) for r in responses], tokenizer.pad_token_id)
    return sequence_logprob(model, batch)


def option_logps(model: Any, tokenizer: Any, prompts: Sequence[Any],
                 options: Sequence[str], prefixes: Sequence[str] | None = None
                 ) -> torch.Tensor:
    """(B, S) log-probs of every score option after every judge prompt (and after that
    prompt's ``prefixes[i]``, the judge's justification, when given)."""
    heads = list(prefixes) if prefixes is not None else [""] * len(prompts)
    flat_p = [p for p in prompts for _ in options]
    flat_o = [head + o for head in heads for o in options]
    batch = make_batch([_ids(tokenizer, render(tokenizer, p)) for p in flat_p],
                       [_ids(tokenizer, o) for o in flat_o], tokenizer.pad_token_id)
    return sequence_logprob(model, batch).view(len(prompts), len(options))


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(EPS, 1 - EPS)
    return -(p * p.log() + (1 - p) * (1 - p).log())


def pair_loss(model: Any, ref: Any, tokenizer: Any, pairs: Sequence[TrainPair],
              config: UpdateConfig, options: Sequence[str],
              irm_ref: Any = None) -> tuple[torch.Tensor, dict]:
    """The batch loss and its parts (DPO on kept pairs; SCIR terms on all pairs).

    ``irm_ref`` is the model the implicit reward is measured against in the SCIR terms
    (default: the DPO reference).
    """
    prompts = [p.prompt for p in pairs]
    pol_w = response_logps(model, tokenizer, prompts, [p.chosen for p in pairs])
    pol_l = response_logps(model, tokenizer, prompts, [p.rejected for p in pairs])
    with torch.no_grad():
        ref_w = response_logps(ref, tokenizer, prompts, [p.chosen for p in pairs])
        ref_l = response_logps(ref, tokenizer, prompts, [p.rejected for p in pairs])
    kept = torch.tensor([p.kept for p in pairs], dtype=torch.float32)
    dpo = (dpo_loss(pol_w, pol_l, ref_w, ref_l, config.beta) * kept).sum() / kept.sum().clamp(
        min=1)
    if config.nll_weight:
        lengths = torch.tensor([len(_ids(tokenizer, p.chosen)) + 1 for p in pairs],
                               dtype=torch.float32)
        nll = (-pol_w / lengths * kept).sum() / kept.sum().clamp(min=1)
        dpo = dpo + config.nll_weight * nll
    parts = {"dpo": float(dpo.detach()), "consistency": 0.0}
    if config.variant != "scir":
        return dpo, parts
    judge_w = option_logps(model, tokenizer, [p.judge_chosen for p in pairs], options,
                           [p.prefix_chosen for p in pairs])
    judge_l = option_logps(model, tokenizer, [p.judge_rejected for p in pairs], options,
                           [p.prefix_rejected for p in pairs])
    p_grm = grm_preference(judge_w, judge_l)
    if irm_ref is not None and irm_ref is not ref:
        with torch.no_grad():
            ref_w = response_logps(irm_ref, tokenizer, prompts, [p.chosen for p in pairs])
            ref_l = response_logps(irm_ref, tokenizer, prompts, [p.rejected for p in pairs])
    p_irm = irm_preference(pol_w, pol_l, ref_w, ref_l, config.beta)
    penalty = consistency_penalty(p_grm, p_irm)
    confidence = (_binary_entropy(p_grm) + _binary_entropy(p_irm)).mean()
    parts["consistency"] = float(penalty.detach())
    return dpo + config.consistency_weight * penalty + config.confidence_weight * confidence, parts


def dpo_update(model: Any, tokenizer: Any, pairs: Sequence[TrainPair], config: UpdateConfig,
               options: Sequence[str], irm_ref: Any = None) -> UpdateStats:
    """Train ``model`` in place on ``pairs``; the DPO reference is a frozen copy of its start.

    ``irm_ref``: the model the SCIR terms measure the implicit reward against. The graph
    passes the model the policy was itself trained from, so that at the first step P_irm is
    exactly the belief the pair was selected with (against the DPO reference it would start
    at 0.5 for every pair, and the penalty would first flatten the judge).
    """
    stats = UpdateStats(pairs_trained=sum(p.kept for p in pairs))
    usable = list(pairs) if config.variant == "scir" else [p for p in pairs if p.kept]
    if not usable or (config.variant != "scir" and not stats.pairs_trained):
        return stats
    ref = copy.deepcopy(model).eval()
    for param in ref.parameters():
        param.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    rng = random.Random(config.seed)
    model.train()
    for _ in range(config.epochs):
        order = usable[:]
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            loss, parts = pair_loss(model, ref, tokenizer, order[start:start + config.batch_size],
                                    config, options, irm_ref)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            stats.steps += 1
            stats.dpo_loss, stats.consistency = parts["dpo"], parts["consistency"]
    model.eval()
    return stats
