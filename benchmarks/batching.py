"""Batching across concurrent sessions: tinmen one-at-a-time vs batched (and vLLM), one run.

    .venv/bin/python benchmarks/batching.py [--sessions 1,4,16,64] [--tokens 32]
        [--threads 2] [--vllm http://127.0.0.1:8000]

N threads call one shared pool at once, as N concurrent sessions do; each asks for one
greedy completion of ``--tokens`` new tokens from the packaged SmolLM2 (spec ``smollm2``).
"one-at-a-time" is the spec with ``max_batch_size = 1`` (every call runs alone), "batched"
the same model with ``max_batch_size = --max-batch`` (continuous batching). Throughput is
generated tokens / wall time. Then ``score`` (4 options per request) batched vs not.
``--vllm URL`` also runs the generate workload against a vLLM OpenAI-compatible server
(plain httpx POSTs to /v1/completions, N at a time) and prints tinmen/vLLM ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="a spec name or file")
    parser.add_argument("--sessions", default="1,4,16,64", help="concurrency levels")
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per request")
    parser.add_argument("--threads", type=int, default=2, help="OMP / torch intra-op threads")
    parser.add_argument("--max-batch", type=int, default=64, help="batched max_batch_size")
    parser.add_argument("--dtypes", default="float32", help="weights dtypes to measure, e.g. "
                        "float32,bfloat16 (vLLM on CPU runs float32 checkpoints in bfloat16)")
    parser.add_argument("--score-sessions", default="16,64", help="concurrency for score")
    parser.add_argument("--vllm", default=None, metavar="URL", help="a vLLM server to compare")
    parser.add_argument("--vllm-model", default=None, help="served model name (default: "
                        "the first of URL/v1/models)")
    return parser.parse_args(argv)


ARGS = parse_args()
# thread settings must be in the environment before torch is imported
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tinmen.models.client import LiveModels  # noqa: E402
from tinmen.models.pool import ModelPool  # noqa: E402
from tinmen.models.registry import resolve_spec  # noqa: E402
from tinmen.models.spec import ModelSpec  # noqa: E402

TOPICS = ["a lighthouse", "a red fox", "the moon", "a bakery", "a robot", "the sea", "a city",
          "a forest", "a violin", "a train"]
OPTIONS = ["Yes", "No", "Maybe", "I do not know"]


def prompt(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long story about {TOPICS[i % 10]} (#{i})."}]


def concurrently(n: int, call) -> tuple[float, list]:
    """Run ``call(i)`` for i < n on n threads at once; (wall seconds, results)."""
    with ThreadPoolExecutor(max_workers=n) as ex:
        start = time.perf_counter()
        results = list(ex.map(call, range(n)))
        return time.perf_counter() - start, results


class Tinmen:
    """One pool serving ``spec``, loaded before timing."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec, self.pool = spec, ModelPool()
        self.models(0).generate("agent", prompt(0), max_new_tokens=4)  # load and warm up

    def models(self, seed: int) -> LiveModels:
        return LiveModels(self.pool, {"agent": self.spec}, seed=seed)

    def generate(self, n: int, tokens: int) -> float:
        wall, counts = concurrently(n, lambda i: len(self.models(i).generate(
            "agent", prompt(i), max_new_tokens=tokens).tokens))
        print(f"  tinmen {self.spec.dtype} max_batch_size={self.spec.max_batch_size:<3} N={n:<3}"
              f" {sum(counts):5d} tokens {wall:7.2f} s  {sum(counts) / wall:7.1f} tok/s",
              flush=True)
        return sum(counts) / wall

    def score(self, n: int) -> float:
        wall, _ = concurrently(n, lambda i: self.models(i).score("agent", prompt(i), OPTIONS))
        print(f"  score {self.spec.dtype} max_batch_size={self.spec.max_batch_size:<3} N={n:<3}"
              f" {wall:7.2f} s  {n / wall:7.1f} requests/s", flush=True)
        return n / wall


class VLLM:
    """The same generate workload as plain HTTP requests to a vLLM server."""

    def __init__(self, url: str, model: str | None, tokenizer) -> None:
        import httpx

        root = url.rstrip("/")
        root = root[: -len("/v1")] if root.endswith("/v1") else root  # with or without /v1
        self.client = httpx.Client(base_url=root, timeout=600)
        self.model = model or self.client.get("/v1/models").json()["data"][0]["id"]
        self.texts = [tokenizer.apply_chat_template(prompt(i), tokenize=False,
                                                    add_generation_prompt=True)
                      for i in range(256)]
        self.call(0, 4)  # warm up

    def call(self, i: int, tokens: int) -> int:
        body = {"model": self.model, "prompt": self.texts[i % len(self.texts)],
                "max_tokens": tokens, "temperature": 0}
        resp = self.client.post("/v1/completions", json=body)
        resp.raise_for_status()
        return int(resp.json()["usage"]["completion_tokens"])

    def generate(self, n: int, tokens: int) -> float:
        wall, counts = concurrently(n, lambda i: self.call(i, tokens))
        print(f"  vLLM {self.model} N={n:<3} {sum(counts):5d} tokens {wall:7.2f} s  "
              f"{sum(counts) / wall:7.1f} tok/s", flush=True)
        return sum(counts) / wall


def table(title: str, unit: str, levels: list[int], one: dict[int, float],
          many: dict[int, float], served: dict[int, float]) -> None:
    print(f"\n{title}, {unit}")
    head = f"{'sessions':>8} | {'one-at-a-time':>13} | {'batched':>8} | {'batched/one':>11}"
    print(head + (f" | {'vLLM':>8} | {'batched/vLLM':>12}" if served else ""))
    for n in levels:
        row = f"{n:>8} | {one[n]:>13.1f} | {many[n]:>8.1f} | {many[n] / one[n]:>10.2f}x"
        if served:
            row += f" | {served[n]:>8.1f} | {many[n] / served[n]:>11.2f}x"
        print(row)


def main() -> int:
    torch.set_num_threads(ARGS.threads)
    torch.set_num_interop_threads(1)
    levels = [int(x) for x in ARGS.sessions.split(",")]
    score_levels = [int(x) for x in ARGS.score_sessions.split(",")]
    spec = resolve_spec(ARGS.model)
    print(f"threads: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "
          f"MKL_NUM_THREADS={os.environ['MKL_NUM_THREADS']} torch.get_num_threads()="
          f"{torch.get_num_threads()} interop=1; cores={os.cpu_count()}; torch "
          f"{torch.__version__}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"model: {spec.name} ({spec.source}); {ARGS.tokens} new tokens, greedy; one "
          "request per session, N sessions on N threads at once")
    server = None
    if ARGS.vllm:
        pool = ModelPool()
        with pool.acquire(spec) as backend:  # the same chat template renders vLLM's prompts
            server = VLLM(ARGS.vllm, ARGS.vllm_model, backend.tokenizer)
        pool.close()
    served: dict[int, float] = {}
    results = []
    # every level runs each contender back to back, so all see the same machine load
    for dtype in ARGS.dtypes.split(","):
        single = Tinmen(spec.model_copy(update={"max_batch_size": 1, "dtype": dtype}))
        batched = Tinmen(spec.model_copy(update={"max_batch_size": ARGS.max_batch,
                                                 "dtype": dtype}))
        one, many, score_one, score_many = {}, {}, {}, {}
        for n in levels:
            if server is not None and n not in served:
                served[n] = server.generate(n, ARGS.tokens)
            one[n], many[n] = single.generate(n, ARGS.tokens), batched.generate(n, ARGS.tokens)
        for n in score_levels:
            score_one[n], score_many[n] = single.score(n), batched.score(n)
        single.pool.close()
        batched.pool.close()
        results.append((dtype, one, many, score_one, score_many))
    for dtype, one, many, score_one, score_many in results:
        table(f"generate throughput, {dtype} weights, batched = max_batch_size "
              f"{ARGS.max_batch}", "tokens/s", levels, one, many, served)
        table(f"score throughput, {dtype} weights ({len(OPTIONS)} options a request)",
              "requests/s", score_levels, score_one, score_many, {})
    print(f"\nend: load average {os.getloadavg()[0]:.2f}")
    if not ARGS.vllm:
        print("vLLM: not measured (pass --vllm URL of a running server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
