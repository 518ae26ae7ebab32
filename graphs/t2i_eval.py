"""Evaluating the T2I agent over items: one study (policies × items), one session per item
and policy; per-turn metrics and the report are built on the analysis DataFrames."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tinmen.agents.t2i.scenes import Item
from tinmen.graphs.plotting import figure, lines_with_bands
from tinmen.graphs.report import mean_interval
from tinmen.graphs.study import Condition, StudyPlan, run_study
from tinmen.graphs.t2i import AGENT
from tinmen.models.pool import ModelPool
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, analysis

from tinmen.errors import ConfigError

COVERAGE_TARGET = 0.8
METRICS = ("fact_coverage", "belief_nll", "image_text_alignment")
SIMULATED_USERS = ("oracle", "llm", "stochastic")


def check_items(items: Sequence[Item], user: str) -> None:
    """Refuse, before a study is written, what an eval cannot run or score."""
    if user not in SIMULATED_USERS:
        raise ConfigError(f"t2i eval needs a simulated user: user must be one of "
                          f"{', '.join(SIMULATED_USERS)}, not '{user}'")
    if user == "oracle":
        missing = [it.id for it in items if not it.scene]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                               if len(missing) > 10 else "")
            raise ConfigError(f"the oracle user answers from each item's 'scene'; "
                              f"{len(missing)} item(s) have none: {shown} (add a scene or "
                              "use --user llm)")


def eval_plan(items: Sequence[Item], bindings: dict[str, ModelSpec], *,
              policies: Sequence[str], user: str, max_turns: int, seed: int = 0,
              images: str = "end") -> StudyPlan:
    """One condition per (policy, item): policies are compared on the same items."""
    by_id = {it.id: it for it in items}
    conditions = [Condition(key=f"{p}|{it.id}", params={"policy": p, "item": it.id})
                  for p in policies for it in items]
    config = {"policies": list(policies), "user": user, "max_turns": max_turns,
              "images": images}
    return StudyPlan(graph=AGENT, name=f"t2i-eval-{'+'.join(policies)}-{user}",
                     conditions=conditions, reps=1,
                     inputs_for=lambda c, r: by_id[c.params["item"]].model_dump(mode="json"),
                     bindings_for=lambda c: bindings,
                     options_for=lambda c: {"policy": c.params["policy"], "user": user,
                                            "max_turns": max_turns, "images": images},
                     seed=seed, config=config)


def evaluate_items(store: Store, items: list[Item], bindings: dict[str, ModelSpec], *,
                   policy: str | Sequence[str], user: str, max_turns: int, seed: int = 0,
                   pool: ModelPool | None = None, progress: bool = True,
                   workers: int = 1, images: str = "end", executor: str = "threads"
                   ) -> dict[str, Any]:
    """Run the eval study; one policy gives its summary, several ``{"by_policy": ...}``."""
    policies = [policy] if isinstance(policy, str) else list(policy)
    check_items(items, user)
    plan = eval_plan(items, bindings, policies=policies, user=user, max_turns=max_turns,
                     seed=seed, images=images)
    outcome = run_study(store, plan, pool=pool, progress=progress, workers=workers,
                        executor=executor)
    by_policy = summarise(store, outcome.study_id)
    if len(policies) == 1:
        return by_policy[policies[0]]
    return {"study_id": outcome.study_id, "items": len(items), "by_policy": by_policy}


def _study_config(store: Store, study_id: int) -> dict[str, Any]:
    with store.unit_of_work() as uow:
        return dict(uow.studies.get(study_id).config or {})


def _policy_of(condition: str, config: dict[str, Any]) -> str:
    # studies before policies were an axis had one policy and keys that are item ids
    return str(config["policy"]) if "policy" in config else condition.partition("|")[0]


def per_turn(store: Store, study_id: int) -> pd.DataFrame:
    """One row per (policy, session, turn) with each metric as a column, every session
    carried to the study's last turn (a session that stopped early keeps its values)."""
    config = _study_config(store, study_id)
    frame = analysis.metrics(store, study=study_id, status="completed", mode="live")
    frame = frame[frame["name"].isin(METRICS) & frame["turn"].notna()]
    if frame.empty:
        return pd.DataFrame(columns=["policy", "session_id", "turn", *METRICS[:2]])
    frame = frame.assign(policy=[_policy_of(c, config) for c in frame["condition"]])
    wide = frame.pivot_table(index=["policy", "session_id", "turn"], columns="name",
                             values="value", aggfunc="last")
    last = int(config.get("max_turns", int(frame["turn"].max())))
    parts = []
    for (policy, sid), part in wide.groupby(level=["policy", "session_id"]):
        part = part.droplevel(["policy", "session_id"]).reindex(range(last + 1)).ffill()
        parts.append(part.rename_axis("turn").reset_index().assign(policy=policy,
                                                                   session_id=sid))
    return pd.concat(parts, ignore_index=True)


def summarise(store: Store, study_id: int) -> dict[str, dict[str, Any]]:
    """Per policy: per-turn means over items (with 95% t-intervals), the single-turn
    values, and the mean number of questions to reach the coverage target (None where no
    item could be scored: items without a scene have no fact coverage)."""
    config = _study_config(store, study_id)
    table = per_turn(store, study_id)
    old = [config["policy"]] if "policy" in config else []  # a study of one policy
    policies = config.get("policies") or old or list(dict.fromkeys(table["policy"]))
    out = {}
    for policy in policies:
        part = table[table["policy"] == policy]
        turns = [_turn_row(int(t), rows) for t, rows in part.groupby("turn")]
        reach = [_first_turn_at_target(rows, len(turns))
                 for _, rows in part.groupby("session_id")
                 if "fact_coverage" in rows and rows["fact_coverage"].notna().any()]
        out[str(policy)] = {
            "items": int(part["session_id"].nunique()), "policy": str(policy),
            "study_id": study_id, "turns": turns,
            "single_turn": {k: turns[0][k] for k in METRICS if turns and k in turns[0]},
            "questions_to_coverage": {"target": COVERAGE_TARGET, "mean": float(
                sum(reach) / len(reach)) if reach else None},
            "session_ids": sorted(part["session_id"].unique())}
    return out


def _turn_row(turn: int, rows: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {"turn": turn, "questions": turn}
    for name in METRICS:
        if name in rows and rows[name].notna().any():  # alignment: only with a scorer
            mean, low, high = mean_interval(rows[name])
            row[name] = mean
            row[f"{name}_ci"] = [None if math.isnan(v) else v for v in (low, high)]
    return row


def _first_turn_at_target(rows: pd.DataFrame, n_turns: int) -> int:
    hit = rows[rows["fact_coverage"] >= COVERAGE_TARGET]["turn"]
    return int(hit.min()) if len(hit) else n_turns


def report(store: Store, study_id: int, out_dir: Path) -> dict[str, Any]:
    """The eval's table (per policy and turn) and its headline plot: fact coverage and
    image–text alignment per turn, by policy, with 95% intervals."""
    by_policy = summarise(store, study_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"t2i-study-{study_id}.md"
    table.write_text(_markdown(by_policy))
    png = out_dir / f"t2i-study-{study_id}.png"
    panels = [m for m in ("fact_coverage", "image_text_alignment")
              if any(m in t for s in by_policy.values() for t in s["turns"])] or \
        ["fact_coverage"]
    with figure(png, cols=len(panels), title=f"t2i study {study_id}") as axes:
        for ax, name in zip(axes[0], panels):
            lines_with_bands(ax, _turn_axis(by_policy), _bands(by_policy, name),
                             xlabel="questions asked", ylabel=f"{name} (95% CI)")
            ax.set_xticks(_turn_axis(by_policy))
    return {"study": study_id, "table": str(table), "plots": [str(png)],
            "by_policy": by_policy}


def _turn_axis(by_policy: dict[str, dict[str, Any]]) -> list[int]:
    return list(range(max((len(s["turns"]) for s in by_policy.values()), default=0)))


def _bands(by_policy: dict[str, dict[str, Any]], name: str
           ) -> dict[str, tuple[list[float], list[float], list[float]]]:
    series = {}
    for policy, summary in by_policy.items():
        rows = [t for t in summary["turns"] if name in t]
        if rows:
            series[policy] = ([t[name] for t in rows],
                              [_or(t[f"{name}_ci"][0], t[name]) for t in rows],
                              [_or(t[f"{name}_ci"][1], t[name]) for t in rows])
    return series


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


def _markdown(by_policy: dict[str, dict[str, Any]]) -> str:
    lines = ["| policy | turn | items | fact coverage [95% CI] | belief NLL | "
             "image-text alignment [95% CI] |", "|---|---|---|---|---|---|"]
    for policy, summary in by_policy.items():
        for t in summary["turns"]:
            lines.append(f"| {policy} | {t['turn']} | {summary['items']} | "
                         f"{_cell(t, 'fact_coverage')} | {t.get('belief_nll', math.nan):.3f} | "
                         f"{_cell(t, 'image_text_alignment')} |")
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any], name: str) -> str:
    if name not in row:
        return "—"
    low, high = row[f"{name}_ci"]
    shown = "" if low is None else f" [{low:.3f}, {high:.3f}]"
    return f"{row[name]:.3f}{shown}"
