"""Pool sharing and recording overhead, measured side by side in one run.

    .venv/bin/python benchmarks/pool_and_recording.py [--model smollm2] [--sessions 20]

Prints (1) the memory of 8 agents sharing one pooled model vs 8 separate loads (bytes the
backends report and the process's resident-set growth), and (2) the wall time of the same
sessions with recording on vs off, as ratios. Default model: a tiny random Llama built in a
temp dir (seconds); ``--model smollm2`` uses the packaged SmolLM2-135M.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch
from tinmen.graphs.example import AGENT
from tinmen.graphs.session import run_session
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def model_spec(name: str, workdir: Path) -> ModelSpec:
    if name != "tiny":
        return resolve_spec(name)
    from tiny_models import build_tiny_lm

    path = build_tiny_lm(workdir / "tiny-lm")
    return ModelSpec(name="tiny-lm", backend="transformers-lm", source=str(path))


def memory(spec: ModelSpec) -> tuple[int, int, int, int]:
    base = rss_bytes()
    shared = ModelPool()
    for i in range(8):
        LiveModels(shared, {"agent": spec}, seed=i).score("agent", "hi", [" a", " b"])
    shared_bytes, shared_rss = shared.bytes_on(shared.loaded()[0]["device"]), rss_bytes() - base
    base = rss_bytes()
    pools = [ModelPool() for _ in range(8)]
    for i, pool in enumerate(pools):
        LiveModels(pool, {"agent": spec}, seed=i).score("agent", "hi", [" a", " b"])
    separate_bytes = sum(p.bytes_on(p.loaded()[0]["device"]) for p in pools)
    separate_rss = rss_bytes() - base
    for pool in pools + [shared]:
        pool.close()
    return shared_bytes, separate_bytes, shared_rss, separate_rss


def session_time(spec: ModelSpec, n: int, record: bool, workdir: Path) -> float:
    store = Store.open(f"sqlite:///{workdir}/bench-{record}.db")
    pool = ModelPool()
    run_session(store, AGENT, {"request": "warm up"}, {"agent": spec}, pool=pool,
                options={"max_new_tokens": 8}, record=record)
    start = time.perf_counter()
    for i in range(n):
        run_session(store, AGENT, {"request": f"How do I cook pasta number {i}?"},
                    {"agent": spec}, pool=pool, seed=i, options={"max_new_tokens": 8},
                    record=record)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny | smollm2 | any spec")
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        spec = model_spec(args.model, workdir)
        sb, pb, sr, pr = memory(spec)
        print(f"model: {spec.name}")
        print(f"8 agents, one shared pool : {sb / 2**20:8.1f} MiB reported, "
              f"RSS +{sr / 2**20:8.1f} MiB")
        print(f"8 agents, 8 separate loads: {pb / 2**20:8.1f} MiB reported, "
              f"RSS +{pr / 2**20:8.1f} MiB")
        print(f"memory ratio separate/shared: {pb / sb:.2f}x reported, "
              f"{pr / max(sr, 1):.2f}x RSS")
        off = session_time(spec, args.sessions, False, workdir)
        on = session_time(spec, args.sessions, True, workdir)
        print(f"session wall time: recording off {off * 1000:.1f} ms, on {on * 1000:.1f} ms, "
              f"ratio on/off {on / off:.2f}x ({args.sessions} sessions each)")


if __name__ == "__main__":
    main()
