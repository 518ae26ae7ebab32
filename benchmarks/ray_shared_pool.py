"""One model copy per cluster vs one per Ray worker: memory and throughput side by side.

    .venv/bin/python benchmarks/ray_shared_pool.py [--workers 2] [--reps 4]

Runs the same small shopper study (the packaged SmolLM2 as the agent, 32-token answers) on
Ray twice, each on its own SQLite file: once as tinmen runs it (every session task calls the
study's pool actor: one copy of the model), once with every task building its own pool in
its worker process (the design before the actor: one copy per worker). It prints the peak
of the summed resident memory of Ray's worker processes during each run (psutil, which Ray
ships), the wall time, sessions/s and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def ray_rss_mb() -> float:
    """Resident memory of every Ray worker process (actors included), in MB."""
    import psutil

    total = 0
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "ray::" in cmd or "default_worker.py" in cmd:
            total += proc.info["memory_info"].rss
    return total / 2**20


def own_pool_trial(url: str, plan: Any, sid: int, cond_id: int, cond: Any, rep: int,
                   pool: Any) -> bool:
    """The per-worker design: ignore the shared actor, load the model in this process."""
    import tinmen.graphs.study as study
    from tinmen.models.pool import ModelPool
    from tinmen.storage import Store

    mine = getattr(own_pool_trial, "pool", None) or ModelPool()
    own_pool_trial.pool = mine  # type: ignore[attr-defined]  # per worker process, by design
    store = Store.open(url, migrate=False)
    try:
        return study._trial(store, plan, sid, cond_id, cond, rep, mine)
    finally:
        store.close()


def run(mode: str, workers: int, reps: int, folder: Path) -> tuple[float, float, int]:
    import ray
    import tinmen.graphs.study as study
    from tinmen.graphs.shopper import study_plan
    from tinmen.models.registry import resolve_spec
    from tinmen.storage import Store

    original = study._ray_trial
    if mode == "per-worker":
        study._ray_trial = own_pool_trial
    try:
        store = Store.open(f"sqlite:///{folder}/{mode}.db")
        plan = study_plan(["car"], {"smollm2": resolve_spec("smollm2")}, [0.2], reps,
                          max_new_tokens=32)
        peak = PeakSampler()
        start = time.perf_counter()
        with peak:
            outcome = study.run_study(store, plan, workers=workers, executor="ray",
                                      progress=False)
        wall = time.perf_counter() - start
    finally:
        study._ray_trial = original
    ray.shutdown()
    return wall, peak.peak_mb, outcome.ran


class PeakSampler:
    """Samples Ray's worker memory twice a second while the study runs; keeps the peak."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_mb = max(self.peak_mb, ray_rss_mb())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {mode: run(mode, args.workers, args.reps, Path(tmp))
                for mode in ("shared actor", "per-worker")}
    base = rows["shared actor"]
    print(f"{args.workers} Ray workers, {rows['shared actor'][2]} shopper sessions on SmolLM2")
    print(f"{'mode':<14}{'wall s':>8}{'sess/s':>8}{'Ray RSS MB':>12}{'RSS ratio':>11}")
    for mode, (wall, rss, n) in rows.items():
        print(f"{mode:<14}{wall:>8.1f}{n / wall:>8.2f}{rss:>12.0f}{rss / base[1]:>11.2f}")


if __name__ == "__main__":
    main()
