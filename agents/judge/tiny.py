"""A tiny character-level decoder trained from scratch, so the self-rewarding loop runs on CPU.

The model is an ordinary transformers ``LlamaForCausalLM`` (2 layers, 64 wide, ~110k
parameters) with a character tokenizer built in-process (a ``tokenizers`` word-level model
over single characters, wrapped as ``PreTrainedTokenizerFast``), saved as a normal HF
directory. The pool loads it with the ``transformers-lm`` backend like any other model, so
every candidate and every verdict goes through ``models`` and is recorded.

Seed model (Yuan et al.'s M1): supervised fine-tuning on instruction-following examples
(task → correct answer) *and* judge examples (task + graded response → oracle score), the
analogue of the paper's IFT + EFT seed data.

Checkpoints are content-addressed (``<root>/<sha16>``): written to a temporary folder and
renamed, so concurrent sessions that train the same model never see a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.judge.losses import make_batch, token_logprobs
from tinmen.agents.judge.rubric import (
    JudgePrompt,
    Style,
    judge_prompt,
    style_for,
    task_prompt,
    verdict_text,
)
from tinmen.agents.judge.tasks import (
    Task,
    judge_training_response,
    make_tasks,
    oracle_points,
    oracle_score,
)
from tinmen.models.sources import LOADING

EOS = "<eos>"
PAD = "<pad>"
UNK = "<unk>"
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + " \n:,.-?!<>/="


class TinyConfig(BaseModel):
    """Architecture and SFT recipe of the seed model; its hash names the cached checkpoint."""

    model_config = ConfigDict(frozen=True)

    hidden: int = Field(default=64, ge=8)
    layers: int = Field(default=2, ge=1)
    heads: int = Field(default=4, ge=1)
    max_len: int = Field(default=160, ge=32)
    sft_steps: int = Field(default=2000, ge=0, description="SFT optimiser steps.")
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    judge_share: float = Field(default=0.9, ge=0, le=1,
                               description="Share of SFT examples that teach judging.")
    self_judge_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of each batch (after the first third of "
        "SFT) that teaches judging the model's own sampled answers, graded by the oracle.")
    refresh_every: int = Field(default=100, ge=1, description="Steps between re-sampling "
                               "the model's own answers for judge examples.")
    ift_examples: int = Field(default=0, ge=0, description="Size of the fixed seed set of "
                              "instruction examples (the paper's IFT data); 0 draws fresh "
                              "tasks without end.")
    judge_prompt: JudgePrompt = Field(default="compact", description="The judge examples' "
                                      "frame: compact (a bare score) or paper (a "
                                      "justification, then Score: N).")
    seed: int = 0

    @property
    def style(self) -> Style:
        return style_for(self.judge_prompt, tiny=True)

    def key(self) -> str:
        fields = self.model_dump()
        if fields["judge_prompt"] == "compact":  # keeps the keys of existing checkpoints
            del fields["judge_prompt"]
        blob = json.dumps({"v": 1, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- building
def build_tokenizer() -> Any:
    """Character tokenizer: one id per character of ``ALPHABET`` plus pad/unk/eos."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    with LOADING:  # no other thread builds or loads meanwhile (see tinmen.models.sources)
        from transformers import PreTrainedTokenizerFast

        vocab = {tok: i for i, tok in enumerate([PAD, UNK, EOS, *ALPHABET])}
        core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        core.decoder = decoders.Fuse()
        return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, pad_token=PAD,
                                       eos_token=EOS, clean_up_tokenization_spaces=False)


def build_model(tokenizer: Any, config: TinyConfig) -> Any:
    with LOADING:  # see build_tokenizer
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(config.seed)
        cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=config.hidden,
                          intermediate_size=3 * config.hidden, num_hidden_layers=config.layers,
                          num_attention_heads=config.heads, num_key_value_heads=config.heads,
                          max_position_embeddings=config.max_len, tie_word_embeddings=True,
                          pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id,
                          bos_token_id=tokenizer.eos_token_id)
        return LlamaForCausalLM(cfg)


def encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def load(path: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a local HF directory; never touches a hub."""
    with LOADING:  # see build_tokenizer
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True,
                                                     dtype=torch.float32)
    return model, tok


def save_checkpoint(model: Any, tokenizer: Any, root: Path, name: str | None = None) -> Path:
    """Save to ``root/<name or content hash>`` atomically; an existing copy is kept."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".partial-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()[:16]
        target = root / (name or digest)
        if target.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
        return target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- SFT data
def instruction_example(task: Task) -> tuple[str, str]:
    """(prompt, target) teaching the policy to answer ``task``."""
    return task_prompt(task), task.answer + EOS


def judge_example(task: Task, response: str, style: Style = "compact") -> tuple[str, str]:
    """(prompt, target) teaching the judge the rubric on one graded response (with the
    paper prompt, the target justifies the score before giving it)."""
    prompt = judge_prompt(task, response, style)
    target = verdict_text(oracle_score(task, response), style, oracle_points(task, response))
    return prompt, target + EOS


def sft_examples(config: TinyConfig) -> Iterator[tuple[str, str]]:
    """An endless, seeded stream of instruction and judge examples."""
    rng = random.Random(config.seed)
    ift = make_tasks(config.ift_examples, seed=rng.randrange(2**31), prefix="ift")
    batch = 0
    while True:
        for task in make_tasks(64, seed=rng.randrange(2**31), prefix=f"sft{batch}"):
            if rng.random() < config.judge_share:
                yield judge_example(task, judge_training_response(task, rng), config.style)
            else:
                yield instruction_example(rng.choice(ift) if ift else task)
        batch += 1


@torch.no_grad()
def sample(model: Any, tokenizer: Any, prompts: list[str], *, temperature: float = 1.0,
           max_new_tokens: int = 16, seed: int = 0) -> list[str]:
    """Sampled continuations, batched by prompt length (no padding needed)."""
    gen = torch.Generator().manual_seed(seed)
    by_len: dict[int, list[int]] = {}
    encoded = [encode(tokenizer, p) for p in prompts]
    for i, prompt_ids in enumerate(encoded):
        by_len.setdefault(len(prompt_ids), []).append(i)
    out = [""] * len(prompts)
    for members in by_len.values():
        ids = torch.tensor([encoded[i] for i in members])
        new = torch.empty((len(members), 0), dtype=torch.long)
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.cat([ids, new], 1)).logits[:, -1].float()
            probs = torch.softmax(logits / max(temperature, 1e-4), -1)
            new = torch.cat([new, torch.multinomial(probs, 1, generator=gen)], 1)
        for row, i in zip(new.tolist(), members):
            cut = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
            out[i] = tokenizer.decode(row[:cut], skip_special_tokens=True)
    return out


def self_judge_pool(model: Any, tokenizer: Any, rng: random.Random, n: int = 256,
                    style: Style = "compact") -> list[tuple[str, str]]:
    """Judge examples on the model's own sampled answers, graded by the oracle (the analogue
    of the paper's human-ranked EFT data, on answers like the ones it will judge)."""
    tasks = make_tasks(n, seed=rng.randrange(2**31), prefix="pool")
    answers = sample(model, tokenizer, [task_prompt(t) for t in tasks],
                     seed=rng.randrange(2**31))
    return [judge_example(t, a, style) for t, a in zip(tasks, answers)]


def sft_loss(model: Any, tokenizer: Any, examples: list[tuple[str, str]]) -> torch.Tensor:
    """Mean negative log-likelihood of the targets' tokens (prompt tokens not scored)."""
    prompts = [encode(tokenizer, p) for p, _ in examples]
    targets = [encode(tokenizer, t) for _, t in examples]
    batch = make_batch(prompts, targets, tokenizer.pad_token_id)
    logp = token_logprobs(model, batch)
    return -(logp * batch.target).sum() / batch.target.sum()


def train_sft(config: TinyConfig, progress: Any = None) -> tuple[Any, Any]:
    """Build the tiny decoder from scratch and fine-tune it; returns (model, tokenizer)."""
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, config)
    if config.sft_steps == 0:
        return model, tokenizer
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=max(config.sft_steps, 4),
        pct_start=max(0.1, 2 / max(config.sft_steps, 4)))
    stream, rng, pool = sft_examples(config), random.Random(config.seed + 1), []
    warm = config.sft_steps // 3
    model.train()
    for step in range(config.sft_steps):
        if step >= warm and (step - warm) % config.refresh_every == 0 and \
                config.self_judge_share > 0:
            pool = self_judge_pool(model.eval(), tokenizer, rng, style=config.style)
            model.train()
        batch = [rng.choice(pool) if pool and rng.random() < config.self_judge_share
                 else next(stream) for _ in range(config.batch_size)]
        loss = sft_loss(model, tokenizer, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if progress is not None:
            progress(step, float(loss.detach()))
    return model.eval(), tokenizer


def seed_model(config: TinyConfig, root: Path, progress: Any = None) -> Path:
    """The SFT seed checkpoint for ``config``, trained once and cached under ``root``."""
    target = root / f"sft-{config.key()}"
    if (target / "config.json").exists():
        return target
    model, tokenizer = train_sft(config, progress)
    return save_checkpoint(model, tokenizer, root, name=target.name)
