"""A small store with real sessions of all four agents, on their cheapest scripted or tiny
configurations, and the viewer served from a thread on a free port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings, resolve_spec

SCRIPTED = {"parser": "scripted:t2i", "questioner": "scripted:t2i", "t2i": "shapes-renderer"}
W2S = {"weak": "1", "strong": "8", "intermediate": None, "filter": 0.6, "conflict": "none",
       "synthetic": {"n_gt": 40, "n_w2s": 20, "n_test": 20, "n_help": 10},
       "train": {"epochs": 1, "hidden": 8}}
JUDGE = {"iterations": 1, "prompts": 2, "candidates": 2, "judge_samples": 1, "eval_items": 2,
         "judgeset_items": 1, "audit_items": 1, "sft_steps": 8, "max_new_tokens": 4,
         "variant": "scir"}


def t2i_bindings() -> dict[str, Any]:
    return {role: resolve_spec(spec) for role, spec in SCRIPTED.items()}


def build(url: str, *, heavy: bool = True) -> dict[str, str | int]:
    """Sessions of t2i (one alone, one in a two-item study), shopper, w2s and judge."""
    from tinmen.agents.t2i.scenes import synthetic_items
    from tinmen.graphs.judge import AGENT as JUDGE_AGENT
    from tinmen.graphs.session import run_session
    from tinmen.graphs.shopper import AGENT as SHOPPER
    from tinmen.graphs.t2i import AGENT as T2I
    from tinmen.graphs.t2i_eval import evaluate_items
    from tinmen.graphs.w2s import AGENT as W2S_AGENT
    from tinmen.storage import Store

    store, pool, ids = Store.open(url), ModelPool(), {}
    item = synthetic_items(3, seed=4)[1]
    ids["t2i"] = run_session(store, T2I, item.model_dump(mode="json"), t2i_bindings(),
                             pool=pool, options={"policy": "attribute", "max_turns": 3,
                                                 "images": "each"}).session_id
    ids["study"] = evaluate_items(store, synthetic_items(2, seed=1), t2i_bindings(),
                                  policy="attribute", user="oracle", max_turns=2, pool=pool,
                                  progress=False)["study_id"]
    ids["shopper"] = run_session(
        store, SHOPPER, {"scenario": "car", "info": "principal-only", "labels_reversed": True,
                         "case": "lower"}, {"agent": resolve_spec("scripted:info-sensitive")},
        pool=pool, seed=3).session_id
    if heavy:
        ids["w2s"] = run_session(store, W2S_AGENT, {"data_seed": 1}, {},
                                 options=W2S).session_id
        ids["judge"] = run_session(store, JUDGE_AGENT, {"seed": 5},
                                   parse_bindings([], JUDGE_AGENT.roles), pool=pool,
                                   options=JUDGE).session_id
    store.close()
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn in a daemon thread, stopped by ``stop()``."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the viewer did not start within 20 s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
