"""The judge's training as recipes the pool's ``trainer`` backend runs as recorded calls.

Each recipe is ``recipe(config, data, checkpoints) -> (checkpoint bytes, metrics)``:

* ``init``: the tiny decoder as built, before any step (the SCIR reference of M_0);
* ``sft``: the seed model M_0, SFT-trained from scratch (cached on disk by its config's
  hash, as before: a deterministic function of the config);
* ``dpo``: one self-rewarding update (DPO, + SCIR's penalty) from the input checkpoint.

A checkpoint travels as one safetensors file: the weights as tensors, and the small text
files of its HF folder (config, tokenizer) as one JSON entry of the safetensors metadata —
no pickles anywhere. :func:`pack` / :func:`unpack_to` convert between that and a folder
``from_pretrained`` loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tinmen.agents.judge import rubric, tiny
from tinmen.agents.judge.tasks import Task
from tinmen.agents.judge.train import TrainPair, UpdateConfig, dpo_update

WEIGHTS = "model.safetensors"
FILES_KEY = "tinmen_files"  # one metadata key: safetensors stores metadata unordered


def pack(folder: Path) -> bytes:
    """One safetensors blob holding an HF folder (weights + its text files)."""
    from safetensors.torch import load, save

    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())
             if p.is_file() and p.name != WEIGHTS}
    tensors = load((folder / WEIGHTS).read_bytes())
    return save(tensors, metadata={FILES_KEY: json.dumps(files, sort_keys=True)})


def unpack_to(data: bytes, target: Path) -> Path:
    """Write blob ``data`` as the HF folder ``target`` (atomically; kept if present)."""
    from safetensors import safe_open
    from safetensors.torch import load, save_file

    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as raw:
            raw.write(data)
            raw.flush()
            with safe_open(raw.name, framework="pt") as handle:
                files = json.loads(handle.metadata()[FILES_KEY])
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        save_file(load(data), tmp / WEIGHTS, metadata={"format": "pt"})
        os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # another session may have written the same checkpoint first: that one is ours too
        if not (isinstance(exc, OSError) and (target / "config.json").exists()):
            raise
    return target


def _packed(model: Any, tokenizer: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return pack(Path(tmp))


def init(config: dict[str, Any], data: dict[str, Any],
         checkpoints: dict[str, bytes]) -> tuple[bytes, dict[str, float]]:
    model, tok = tiny.train_sft(tiny.TinyConfig(**{**config, "sft_steps": 0}))
    return _packed(model, tok), {}


def sft(config: dict[str, Any], data: dict[str, Any],
        checkpoints: dict[str, bytes]) -> tuple[bytes, dict[str, float]]:
    from tinmen.config import cache_dir

    tiny_config = tiny.TinyConfig(**config)
    folder = tiny.seed_model(tiny_config, cache_dir() / "judge")
    return pack(folder), {"sft_steps": float(tiny_config.sft_steps)}


def dpo(config: dict[str, Any], data: dict[str, Any],
        checkpoints: dict[str, bytes]) -> tuple[bytes, dict[str, float]]:
    """``data``: the pairs, the judge style, and which checkpoint is the policy and which
    (SCIR) the model it was trained from."""
    style = data["style"]
    pairs = [_train_pair(p, style) for p in data["pairs"]]
    with tempfile.TemporaryDirectory() as tmp:
        model, tok = tiny.load(_folder(data["policy"], checkpoints, Path(tmp) / "policy"))
        irm_ref = None
        if config["variant"] == "scir" and data.get("previous"):
            irm_ref = tiny.load(_folder(data["previous"], checkpoints,
                                        Path(tmp) / "previous"))[0].eval()
        stats = dpo_update(model, tok, pairs, UpdateConfig(**config),
                           rubric.score_options(style), irm_ref=irm_ref)
        return _packed(model, tok), {"dpo_loss": stats.dpo_loss,
                                     "consistency_penalty": stats.consistency,
                                     "train_steps": float(stats.steps)}


def _folder(ref: dict[str, Any], checkpoints: dict[str, bytes], target: Path) -> Path:
    """A checkpoint named by sha256 (one of this call's inputs) or a local HF folder."""
    if "sha256" in ref:
        data = checkpoints[ref["sha256"]]
        assert hashlib.sha256(data).hexdigest() == ref["sha256"]
        return unpack_to(data, target)
    from tinmen.models.sources import resolve_source

    path = resolve_source(ref["source"])
    if not (isinstance(path, Path) and path.is_dir()):
        from tinmen.errors import ConfigError

        raise ConfigError(f"the policy '{ref['source']}' is not a local HF directory, so it "
                          "cannot be DPO-trained; use --model policy=judge-tiny or "
                          "transformers-lm:/path/to/model")
    return path


def _train_pair(p: dict[str, Any], style: str) -> TrainPair:
    task = Task.model_validate(p["task"])
    prefix_w, prefix_l = p.get("judge_prefix") or ("", "")
    return TrainPair(prompt=rubric.task_prompt(task), chosen=p["chosen"],
                     rejected=p["rejected"], kept=p["kept"],
                     judge_chosen=rubric.judge_prompt(task, p["chosen"], style),
                     judge_rejected=rubric.judge_prompt(task, p["rejected"], style),
                     prefix_chosen=prefix_w, prefix_rejected=prefix_l)


RECIPES = MappingProxyType({"init": init, "sft": sft, "dpo": dpo})
