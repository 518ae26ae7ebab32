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
# fact_coverage_argmax is the headline (every slot at its most probable value, as a
# generator draws it); fact_coverage is the strict version (only values with p > 0.5)
METRICS = ("fact_coverage_argmax", "fact_coverage", "belief_nll", "image_text_alignment")
# measured without ground truth (DesignBench): carried to later turns like METRICS ...
NO_TRUTH_METRICS = ("belief_entropy", "belief_entropy_weighted", "questions")
# ... and one value per answer (agents/t2i/designbench.py belief_change), never carried
ANSWER_METRICS = ("answer_changed_belief", "answer_changed_other_slots", "belief_max_tv")
NEEDS_SCENE = ("fact_coverage_argmax", "fact_coverage", "belief_nll",
               "questions_to_coverage_argmax", "questions_to_coverage")
SIMULATED_USERS = ("oracle", "llm", "llm-free", "stochastic")


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


def arm_label(policy: str, user: str, stop_rule: str, users: Sequence[str],
              stop_rules: Sequence[str]) -> str:
    """How one arm of an eval is named: the policy, plus the user and stop rule when the
    study compares several ("attribute user=llm-free stop=reference")."""
    label = policy
    if len(users) > 1:
        label += f" user={user}"
    if len(stop_rules) > 1:
        label += f" stop={stop_rule}"
    return label


def eval_plan(items: Sequence[Item], bindings: dict[str, ModelSpec], *,
              policies: Sequence[str], user: str | Sequence[str], max_turns: int,
              seed: int = 0, images: str = "end",
              stop_rule: str | Sequence[str] = "settled",
              vocabulary: str = "shapes") -> StudyPlan:
    """One condition per (arm, item), an arm being a policy × user × stop rule: arms are
    compared on the same items. With one user and one stop rule an arm is its policy."""
    users = [user] if isinstance(user, str) else list(user)
    rules = [stop_rule] if isinstance(stop_rule, str) else list(stop_rule)
    by_id = {it.id: it for it in items}
    arms = [(arm_label(p, u, r, users, rules), p, u, r)
            for p in policies for u in users for r in rules]
    conditions = [Condition(key=f"{label}|{it.id}", params={
        "policy": p, "user": u, "stop_rule": r, "item": it.id})
        for label, p, u, r in arms for it in items]
    config = {"policies": [a[0] for a in arms], "user": users[0], "users": users,
              "stop_rules": rules, "max_turns": max_turns, "images": images}
    if vocabulary != "shapes":  # studies from before the option resume unchanged
        config["vocabulary"] = vocabulary
    return StudyPlan(graph=AGENT, name=f"t2i-eval-{'+'.join(policies)}-{'+'.join(users)}",
                     conditions=conditions, reps=1,
                     inputs_for=lambda c, r: by_id[c.params["item"]].model_dump(mode="json"),
                     bindings_for=lambda c: bindings,
                     options_for=lambda c: {"policy": c.params["policy"],
                                            "user": c.params["user"],
                                            "stop_rule": c.params["stop_rule"],
                                            "max_turns": max_turns, "images": images,
                                            "vocabulary": vocabulary},
                     seed=seed, config=config)


def evaluate_items(store: Store, items: list[Item], bindings: dict[str, ModelSpec], *,
                   policy: str | Sequence[str], user: str | Sequence[str], max_turns: int,
                   seed: int = 0, stop_rule: str | Sequence[str] = "settled",
                   pool: ModelPool | None = None, progress: bool = True,
                   workers: int = 1, images: str = "end", executor: str = "threads",
                   study_id: int | None = None, vocabulary: str = "shapes"
                   ) -> dict[str, Any]:
    """Run the eval study (or finish study ``study_id``, which must have the same plan);
    one policy gives its summary, several ``{"by_policy": ...}``."""
    policies = [policy] if isinstance(policy, str) else list(policy)
    for one in [user] if isinstance(user, str) else user:
        check_items(items, one)
    plan = eval_plan(items, bindings, policies=policies, user=user, max_turns=max_turns,
                     seed=seed, images=images, stop_rule=stop_rule, vocabulary=vocabulary)
    outcome = run_study(store, plan, pool=pool, progress=progress, workers=workers,
                        executor=executor, study_id=study_id)
    by_policy = summarise(store, outcome.study_id)
    arms = plan.config["policies"]
    if len(arms) == 1:
        return by_policy[arms[0]]
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
    frame = frame[frame["name"].isin(METRICS + NO_TRUTH_METRICS + ANSWER_METRICS)
                  & frame["turn"].notna()]
    if frame.empty:
        return pd.DataFrame(columns=["policy", "session_id", "turn", *METRICS[:2]])
    frame = frame.assign(policy=[_policy_of(c, config) for c in frame["condition"]])
    wide = frame.pivot_table(index=["policy", "session_id", "turn"], columns="name",
                             values="value", aggfunc="last")
    last = int(config.get("max_turns", int(frame["turn"].max())))
    parts = []
    for (policy, sid), part in wide.groupby(level=["policy", "session_id"]):
        part = _carried(part.droplevel(["policy", "session_id"]).reindex(range(last + 1)))
        parts.append(part.rename_axis("turn").reset_index().assign(policy=policy,
                                                                   session_id=sid))
    return pd.concat(parts, ignore_index=True)


def _carried(part: pd.DataFrame) -> pd.DataFrame:
    """Per-turn values carried past a session's last turn; per-answer ones are not (no
    answer was given there)."""
    keep = [c for c in part.columns if c not in ANSWER_METRICS]
    return part.assign(**{c: part[c].ffill() for c in keep})


def _answers(part: pd.DataFrame) -> dict[str, Any]:
    """Over every answer: how many, and the share that changed the belief (and that
    changed some slot other than the one asked about)."""
    if "answer_changed_belief" not in part:
        return {"count": 0, "changed_share": None, "changed_other_share": None}
    given = part[part["answer_changed_belief"].notna()]

    def share(column: str) -> float | None:
        return float(given[column].mean()) if len(given) and column in given else None
    return {"count": len(given), "changed_share": share("answer_changed_belief"),
            "changed_other_share": share("answer_changed_other_slots")}


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
        reach_argmax = [_first_turn_at_target(rows, len(turns), "fact_coverage_argmax")
                        for _, rows in part.groupby("session_id")
                        if "fact_coverage_argmax" in rows
                        and rows["fact_coverage_argmax"].notna().any()]
        out[str(policy)] = {
            "items": int(part["session_id"].nunique()), "policy": str(policy),
            "study_id": study_id, "turns": turns,
            "single_turn": {k: turns[0][k] for k in METRICS if turns and k in turns[0]},
            "questions_to_coverage": {"target": COVERAGE_TARGET, "mean": float(
                sum(reach) / len(reach)) if reach else None},
            "questions_to_coverage_argmax": {"target": COVERAGE_TARGET, "mean": float(
                sum(reach_argmax) / len(reach_argmax)) if reach_argmax else None},
            "session_ids": sorted(part["session_id"].unique()),
            "answers": _answers(part)}
        if not reach:  # no item had a scene: name what was not measured, never report 0
            out[str(policy)]["skipped"] = {m: "no ground-truth scene" for m in NEEDS_SCENE}
    return out


def _turn_row(turn: int, rows: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {"turn": turn, "questions": turn}
    for name in METRICS + NO_TRUTH_METRICS + ANSWER_METRICS:
        if name in rows and rows[name].notna().any():  # alignment: only with a scorer
            mean, low, high = _share_interval(rows[name]) if name in SHARES else \
                mean_interval(rows[name])
            row[name] = mean
            row[f"{name}_ci"] = [None if math.isnan(v) else v for v in (low, high)]
    if "answer_changed_belief" in rows:
        row["answers"] = int(rows["answer_changed_belief"].notna().sum())
    return row


SHARES = ("answer_changed_belief", "answer_changed_other_slots")  # 0/1 per answer


def _share_interval(values: pd.Series) -> tuple[float, float, float]:
    """A share of 0/1 values with its Wilson 95% interval (a t-interval leaves [0, 1])."""
    from tinmen.agents.shopper.stats import wilson

    clean = values.dropna()
    hits = int((clean > 0.5).sum())
    low, high = wilson(hits, len(clean))
    return hits / len(clean), low, high


def _first_turn_at_target(rows: pd.DataFrame, n_turns: int,
                          metric: str = "fact_coverage") -> int:
    hit = rows[rows[metric] >= COVERAGE_TARGET]["turn"]
    return int(hit.min()) if len(hit) else n_turns


def report(store: Store, study_id: int, out_dir: Path) -> dict[str, Any]:
    """The eval's table (per policy and turn) and its headline plot: fact coverage and
    image–text alignment per turn, by policy, with 95% intervals."""
    by_policy = summarise(store, study_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"t2i-study-{study_id}.md"
    scored = not all("skipped" in s for s in by_policy.values())
    # scored studies keep their coverage table; the no-truth measures stay in by_policy
    table.write_text(_markdown(by_policy) if scored else _no_truth_markdown(by_policy))
    png = out_dir / f"t2i-study-{study_id}.png"
    panels = [m for m in ("fact_coverage", "image_text_alignment")
              if any(m in t for s in by_policy.values() for t in s["turns"])] or \
        ["fact_coverage"]
    plots = []
    if scored or "image_text_alignment" in panels:
        with figure(png, cols=len(panels), title=f"t2i study {study_id}") as axes:
            for ax, name in zip(axes[0], panels):
                lines_with_bands(ax, _turn_axis(by_policy), _bands(by_policy, name),
                                 xlabel="questions asked", ylabel=f"{name} (95% CI)")
                ax.set_xticks(_turn_axis(by_policy))
        plots.append(str(png))
    if not scored:  # no scene to score against: the measures that need none, plotted
        plots.append(str(_no_truth_plot(out_dir / f"t2i-study-{study_id}-belief.png",
                                        by_policy, study_id)))
    return {"study": study_id, "table": str(table), "plots": plots, "by_policy": by_policy}


NO_TRUTH_PANELS = (("belief_entropy_weighted", "importance-weighted belief entropy (nats)"),
                   ("belief_entropy", "total belief entropy (nats)"),
                   ("answer_changed_belief", "share of answers that changed the belief"))


def _no_truth_plot(path: Path, by_policy: dict[str, dict[str, Any]], study_id: int) -> Path:
    """Belief entropy per turn and, per answer, the share that changed the belief (each
    policy at the turns it has values for; 95% t-intervals)."""
    with figure(path, cols=len(NO_TRUTH_PANELS), title=f"t2i study {study_id}: "
                "measured without ground truth") as axes:
        for ax, (name, label) in zip(axes[0], NO_TRUTH_PANELS):
            for policy, bands in _bands(by_policy, name).items():
                x = [t["turn"] for t in by_policy[policy]["turns"] if name in t]
                lines_with_bands(ax, x, {policy: bands}, xlabel="turn (questions asked)",
                                 ylabel=label)
            ax.set_xticks(_turn_axis(by_policy))
            if len(by_policy) > 1:
                ax.legend(fontsize=8)
    return path


def _no_truth_markdown(by_policy: dict[str, dict[str, Any]]) -> str:
    """Per turn: questions asked (mean), belief entropy, weighted entropy, and over that
    turn's answers the share that changed the belief; then what was skipped and why."""
    lines = ["| policy | turn | items | questions asked | belief entropy [95% CI] | "
             "weighted entropy [95% CI] | answers | changed the belief [Wilson 95%] | "
             "changed another slot |", "|---|---|---|---|---|---|---|---|---|"]
    for policy, summary in by_policy.items():
        for t in summary["turns"]:
            n = t.get("answers", 0)
            lines.append(
                f"| {policy} | {t['turn']} | {summary['items']} | {t['questions']:.2f} | "
                f"{_cell(t, 'belief_entropy')} | {_cell(t, 'belief_entropy_weighted')} | "
                f"{n} | {_cell(t, 'answer_changed_belief')} | "
                f"{_cell(t, 'answer_changed_other_slots')} |")
    for policy, summary in by_policy.items():
        a = summary["answers"]
        if a["count"]:
            lines.append(f"\n{policy}: {a['count']} answers, {a['changed_share']:.0%} changed "
                         f"the belief, {a['changed_other_share']:.0%} changed a slot other "
                         "than the one asked.")
        if summary.get("skipped"):
            lines.append(f"\n{policy}: skipped (no ground-truth scene): "
                         + ", ".join(summary["skipped"]) + ".")
    return "\n".join(lines) + "\n"



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
    lines = ["| policy | turn | items | fact coverage, argmax scene [95% CI] | fact coverage, "
             "strict p > 0.5 [95% CI] | belief NLL | image-text alignment [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for policy, summary in by_policy.items():
        for t in summary["turns"]:
            lines.append(f"| {policy} | {t['turn']} | {summary['items']} | "
                         f"{_cell(t, 'fact_coverage_argmax')} | "
                         f"{_cell(t, 'fact_coverage')} | {t.get('belief_nll', math.nan):.3f} | "
                         f"{_cell(t, 'image_text_alignment')} |")
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any], name: str) -> str:
    if name not in row:
        return "—"
    low, high = row[f"{name}_ci"]
    shown = "" if low is None else f" [{low:.3f}, {high:.3f}]"
    return f"{row[name]:.3f}{shown}"
