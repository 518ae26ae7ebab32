"""Study executors side by side: the same small judge study on threads and on Ray.

    .venv/bin/python benchmarks/study_executors.py [--workers 2] [--seeds 4]

Runs one study per executor setting — threads with 1 worker, threads with ``--workers``,
Ray with ``--workers`` CPUs — each on its own SQLite file, and prints the wall times and
their ratios to the single-worker run, plus whether all three produced the same per-session
oracle scores (they must: sessions are seeded by (study seed, condition, rep)). The seed
models are trained once before timing, so the runs compare the loop itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from tinmen.graphs.judge import AGENT, study_plan
from tinmen.graphs.judge_report import session_iterations
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings
from tinmen.storage import Store

OPTIONS = {"iterations": 1, "prompts": 48, "sft_steps": 300, "eval_items": 20,
           "audit_items": 4, "judgeset_items": 4}


def run(executor: str, workers: int, seeds: int, folder: Path) -> tuple[float, list[float]]:
    store = Store.open(f"sqlite:///{folder}/{executor}-{workers}.db")
    plan = study_plan(["srlm"], seeds, OPTIONS, parse_bindings([], AGENT.roles))
    start = time.perf_counter()
    sid = run_study(store, plan, pool=ModelPool(), workers=workers, executor=executor,
                    progress=False).study_id
    wall = time.perf_counter() - start
    scores = [round(r["oracle_mean"], 6) for r in sorted(
        session_iterations(store, sid), key=lambda r: (r["rep"], r["t"]))]
    store.close()
    return wall, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run("threads", 1, args.seeds, folder)  # trains and caches the seed models
        results = {(ex, w): run(ex, w, args.seeds, folder) for ex, w in (
            ("threads", 1), ("threads", args.workers), ("ray", args.workers))}
    base = results[("threads", 1)][0]
    print(f"{args.seeds} judge sessions ({OPTIONS}), {os.cpu_count()} CPUs")
    for (ex, w), (wall, _) in results.items():
        print(f"  {ex:8s} workers={w}: {wall:6.1f} s   speed-up vs threads/1: {base / wall:.2f}x")
    same = len({tuple(s) for _, s in results.values()}) == 1
    print(f"  same per-session oracle scores on every executor: {same}")


if __name__ == "__main__":
    main()
