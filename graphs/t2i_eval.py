"""Evaluating the T2I agent over items: one study, one session per item, metrics by SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tinmen.agents.t2i.scenes import Item
from tinmen.graphs.study import Condition, StudyPlan, run_study
from tinmen.graphs.t2i import AGENT
from tinmen.models.pool import ModelPool
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm

COVERAGE_TARGET = 0.8


def evaluate_items(store: Store, items: list[Item], bindings: dict[str, ModelSpec], *,
                   policy: str, user: str, max_turns: int, seed: int = 0,
                   pool: ModelPool | None = None, progress: bool = True,
                   workers: int = 1, images: str = "end", executor: str = "threads"
                   ) -> dict[str, Any]:
    by_id = {it.id: it for it in items}
    plan = StudyPlan(graph=AGENT, name=f"t2i-eval-{policy}-{user}",
                     conditions=[Condition(key=it.id) for it in items], reps=1,
                     inputs_for=lambda c, r: by_id[c.key].model_dump(mode="json"),
                     bindings_for=lambda c: bindings,
                     options_for=lambda c: {"policy": policy, "user": user,
                                            "max_turns": max_turns, "images": images},
                     seed=seed, config={"policy": policy, "user": user, "max_turns": max_turns,
                                        "images": images})
    outcome = run_study(store, plan, pool=pool, progress=progress, workers=workers,
                        executor=executor)
    return summarise(store, outcome.study_id, policy=policy, max_turns=max_turns)


METRICS = ("fact_coverage", "belief_nll", "image_text_alignment")


def coverage_table(store: Store, study_id: int) -> dict[str, dict[int, dict[str, float]]]:
    """session id → turn → {metric: value}, read from the metric table."""
    query = (select(orm.Metric.session_id, orm.Metric.turn, orm.Metric.name, orm.Metric.value)
             .join(orm.Session, orm.Session.id == orm.Metric.session_id)
             .where(orm.Session.study_id == study_id, orm.Session.status == "completed",
                    orm.Metric.name.in_(METRICS)))
    table: dict[str, dict[int, dict[str, float]]] = {}
    with store.unit_of_work() as uow:
        for sid, turn, name, value in uow.session.execute(query):
            table.setdefault(sid, {}).setdefault(turn, {})[name] = value
    return table


def summarise(store: Store, study_id: int, *, policy: str, max_turns: int) -> dict[str, Any]:
    """Per-turn means over items (a session that stopped early keeps its last values)."""
    table = coverage_table(store, study_id)
    turns = []
    for t in range(max_turns + 1):
        rows = [per[max(k for k in per if k <= t)] for per in table.values()]
        row = {"turn": t, "questions": t,
               "fact_coverage": _mean([r["fact_coverage"] for r in rows]),
               "belief_nll": _mean([r["belief_nll"] for r in rows])}
        scored = [r["image_text_alignment"] for r in rows if "image_text_alignment" in r]
        if scored:  # only when a scorer is bound and images are drawn every turn
            row["image_text_alignment"] = _mean(scored)
        turns.append(row)
    reach = [min((k for k, r in per.items() if r["fact_coverage"] >= COVERAGE_TARGET),
                 default=max_turns + 1) for per in table.values()]
    return {"items": len(table), "policy": policy, "study_id": study_id, "turns": turns,
            "single_turn": {k: turns[0][k] for k in METRICS if k in turns[0]},
            "questions_to_coverage": {"target": COVERAGE_TARGET, "mean": _mean(reach)},
            "session_ids": sorted(table)}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
