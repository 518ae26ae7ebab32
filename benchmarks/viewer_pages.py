"""How fast the viewer serves its pages over a big store.

    .venv/bin/python benchmarks/viewer_pages.py [--sessions 10000] [--heavy 300] [--n 15]

Builds a SQLite store with ``--sessions`` sessions by bulk inserts (``--heavy`` of them
realistic — 20 steps, 5 beliefs with distributions, a decision with 4 options and 2 model
calls with 20 token log-probs per step, metrics — the rest light: 2 steps, a belief, a
metric), then times the sessions page (first page, a deep page 9,000 rows in, both with a
filter) and a heavy session's page and JSON, each the median of ``--n`` requests through
FastAPI's TestClient. Target: under 1 s per page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from tinmen.storage import Store, orm

GRAPHS = ("t2i", "shopper", "w2s", "judge")
STATUSES = ("completed", "completed", "completed", "failed", "interrupted")


def _content(text: str, texts: dict[str, str]) -> str:
    sha = hashlib.sha256(text.encode()).hexdigest()
    texts[sha] = text
    return sha


def _heavy_rows(sid: str, step_ids: list[int], rows: dict[str, list[Any]],
                texts: dict[str, str], base: int) -> None:
    for k, step_id in enumerate(step_ids):
        for j in range(5):
            dist = {f"v{i}": p for i, p in enumerate((0.4, 0.3, 0.2, 0.1))}
            rows["belief"].append({"session_id": sid, "step_id": step_id, "agent": "agent",
                                   "subject": f"entity{j}.attr{k % 3}", "value": "v0",
                                   "distribution": dist, "entropy": 1.28, "source": "model",
                                   "seq": base + k * 10 + j})
        rows["decision"].append({"session_id": sid, "step_id": step_id, "agent": "agent",
                                 "kind": "question", "chosen": "o0", "uncertainty": 0.7,
                                 "options": [{"option": f"o{i}", "score": 1.0 / (i + 1)}
                                             for i in range(4)], "rationale": "most uncertain",
                                 "based_on": ["entity0.attr0"], "seq": base + k * 10 + 5})
        for c in range(2):
            request = json.dumps({"prompt": f"describe step {k} of {sid} ({c})"})
            output = json.dumps({"text": "word " * 20, "tokens": ["word "] * 20,
                                 "token_logprobs": [-0.1 * (i % 7) for i in range(20)]})
            rows["model_call"].append({
                "session_id": sid, "step_id": step_id, "role": "parser",
                "call_index": k * 2 + c, "op": "generate", "model": "scripted:t2i", "seed": 0,
                "request_hash": hashlib.sha256(request.encode()).hexdigest(),
                "request_sha": _content(request, texts), "output_sha": _content(output, texts),
                "token_logprobs": [-0.1 * (i % 7) for i in range(20)], "nll": 5.7,
                "latency_s": 0.01, "batch_size": 4, "device": "cpu",
                "seq": base + k * 10 + 6 + c})


def build(url: str, n: int, heavy: int) -> tuple[str, list[str]]:
    """The store; returns a heavy session's id and every id newest first."""
    store = Store.open(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with store.engine.begin() as conn:
        study = conn.execute(insert(orm.Study).returning(orm.Study.id), [
            {"name": "bench", "graph": "t2i", "config": {"reps": n // 10}}]).scalar_one()
        conds = conn.execute(insert(orm.Condition).returning(orm.Condition.id), [
            {"study_id": study, "key": f"cond-{i}", "params": {"i": i}} for i in range(10)]
        ).scalars().all()
    ids = [uuid.uuid4().hex for _ in range(n)]
    sessions = [{"id": sid, "graph": GRAPHS[i % 4], "mode": "live",
                 "status": STATUSES[i % 5], "study_id": study if i % 2 else None,
                 "condition_id": conds[i % 10] if i % 2 else None, "rep": i // 20,
                 "thread_id": sid, "seed": i, "inputs": {"inputs": {}, "options": {}},
                 "bindings": {"parser": {"name": "scripted:t2i"}},
                 "created_at": start + timedelta(seconds=i)} for i, sid in enumerate(ids)]
    _insert(store, orm.Session, sessions)
    _insert(store, orm.Agent, [{"session_id": sid, "name": "agent", "seed": 0, "roles": []}
                               for sid in ids])
    steps = [{"session_id": sid, "index": k, "node": f"node{k % 5}", "agent": "agent",
              "duration_s": 0.01, "started_at": start}
             for i, sid in enumerate(ids) for k in range(20 if i < heavy else 2)]
    step_ids = _insert(store, orm.Step, steps, returning=True)
    rows: dict[str, list[Any]] = {"belief": [], "decision": [], "model_call": [], "metric": []}
    texts: dict[str, str] = {}
    cursor = 0
    for i, sid in enumerate(ids):
        count = 20 if i < heavy else 2
        mine, cursor = step_ids[cursor:cursor + count], cursor + count
        if i < heavy:
            _heavy_rows(sid, mine, rows, texts, 0)
        else:
            rows["belief"].append({"session_id": sid, "step_id": mine[0], "subject": "x",
                                   "value": 1, "source": "model", "seq": 0})
        rows["metric"] += [{"session_id": sid, "study_id": sessions[i]["study_id"],
                            "step_index": count - 1, "name": "score", "value": i / n}]
    _insert(store, orm.Content, [{"sha256": s, "text": t} for s, t in texts.items()])
    for name, model in (("belief", orm.Belief), ("decision", orm.Decision),
                        ("model_call", orm.ModelCall), ("metric", orm.Metric)):
        _insert(store, model, rows[name])
    store.close()
    return ids[0], list(reversed(ids))


def _insert(store: Store, model: Any, rows: list[dict[str, Any]], *, returning: bool = False
            ) -> list[int]:
    """Bulk inserts in chunks (one transaction); with ``returning`` the new ids, in order."""
    out: list[int] = []
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            chunk = rows[i:i + 5000]
            if returning:
                stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
                out += conn.execute(stmt, chunk).scalars().all()
            else:
                conn.execute(insert(model), chunk)
    return out


def median_ms(client: Any, path: str, n: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        size = len(response.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--heavy", type=int, default=300)
    parser.add_argument("--n", type=int, default=15)
    args = parser.parse_args()
    from fastapi.testclient import TestClient
    from tinmen.viewer import ViewerConfig, create_app

    folder = Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    t0 = time.perf_counter()
    heavy_id, newest_first = build(f"sqlite:///{folder}/bench.db", args.sessions, args.heavy)
    print(f"built {args.sessions} sessions ({args.heavy} heavy) in "
          f"{time.perf_counter() - t0:.1f} s: {folder}/bench.db")
    app = create_app(ViewerConfig(db=f"sqlite:///{folder}/bench.db", cache=folder))
    client = TestClient(app, base_url="http://127.0.0.1")
    deep = newest_first[min(9000, len(newest_first) - 1)]
    pages = [("sessions, first page", "/sessions"),
             ("sessions, deep page (after 9,000)", f"/sessions?after={deep}"),
             ("sessions, filter graph+status", "/sessions?graph=t2i&status=completed"),
             ("sessions, filter + deep page", f"/sessions?graph=t2i&after={deep}"),
             ("sessions, condition filter", "/sessions?study=1&condition=cond-3"),
             ("API sessions, deep page", f"/api/sessions?after={deep}&limit=100"),
             ("session page (20 steps)", f"/sessions/{heavy_id}?step=10"),
             ("API session detail", f"/api/sessions/{heavy_id}"),
             ("belief table session, light", f"/sessions/{newest_first[0]}")]
    print(f"\n| page | median ms (n={args.n}) | bytes |\n|---|---:|---:|")
    worst = 0.0
    for label, path in pages:
        ms, size = median_ms(client, path, args.n)
        worst = max(worst, ms)
        print(f"| {label} | {ms:.1f} | {size} |")
    print(f"\nslowest median {worst:.1f} ms: {'under' if worst < 1000 else 'OVER'} the 1 s "
          "target")
    app.state.stores.close()


if __name__ == "__main__":
    main()
