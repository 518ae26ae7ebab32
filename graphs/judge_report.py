"""Per-iteration metrics of judge studies, computed from the store with SQL, and the plots.

Every number comes from ``prediction`` rows the ``judge`` graph wrote (split ``t<N>`` =
iteration N):

* ``eval``      – the oracle score (label) of M_t's greedy answer to each held-out prompt;
* ``judgeset``  – M_t's expected judge score (predicted) vs the oracle (label) on a fixed set
  of graded responses;
* ``pair``      – one row per prompt of iteration t: oracle agrees with the chosen side
  (label), kept (predicted), chosen-vs-rejected similarity (probability); ties have no label;
* ``grm`` / ``irm`` – the two internal reward models' P(chosen ≻ rejected) (probability);
* ``audit:<role>`` – fixed judges' expected scores of M_t's answers (for the ranking).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import aliased
from tinmen.agents.judge.stats import kendall, pairwise_accuracy, spearman
from tinmen.graphs.plotting import figure, lines_with_bands
from tinmen.storage import Store, analysis, orm

from tinmen.errors import NotFoundError

Key = tuple[str, int]  # (session id, iteration)
P = orm.Prediction


def iteration_of(split_column: Any) -> Any:
    """SQL for the iteration number held in a split like ``t3``."""
    return cast(func.substr(split_column, 2), Integer)


def sessions(store: Store, study_id: int) -> list[dict[str, Any]]:
    """The study's completed live sessions with their variant (condition key) and rep."""
    with store.unit_of_work() as uow:
        if uow.session.get(orm.Study, study_id) is None:
            raise NotFoundError(f"no study {study_id} in the store; list them with "
                                "`tinmen studies`")
    frame = analysis.sessions(store, study=study_id, status="completed", mode="live")
    return [{"session": r.session_id, "variant": r.condition, "rep": int(r.rep)}
            for r in frame.sort_values("rep", kind="stable").itertuples()]


def win_rate_sql(ids: list[str]) -> Any:
    """Oracle win rate of M_t's answers over M_{t-1}'s (ties count half), per session and t."""
    cur, prev = aliased(P), aliased(P)
    t = iteration_of(cur.split)
    win = case((cur.label > prev.label, 1.0), (cur.label == prev.label, 0.5), else_=0.0)
    return (select(cur.session_id, t.label("it"), func.avg(win).label("win_rate"))
            .join(prev, and_(prev.session_id == cur.session_id, prev.model == "eval",
                             prev.example_id == cur.example_id,
                             iteration_of(prev.split) == t - 1))
            .where(cur.model == "eval", cur.session_id.in_(ids))
            .group_by(cur.session_id, t))


def pairs_sql(ids: list[str]) -> Any:
    """Per session and t: prompts, non-tied pairs, pairs kept, their oracle precision and
    the mean chosen-vs-rejected similarity of kept pairs."""
    kept = P.predicted == 1.0
    return (select(P.session_id, iteration_of(P.split).label("it"),
                   func.count().label("prompts"),
                   func.count(P.label).label("pairs"),
                   func.sum(case((kept, 1), else_=0)).label("pairs_kept"),
                   func.avg(case((kept, P.label))).label("precision"),
                   func.avg(case((kept, P.probability))).label("similarity"))
            .where(P.model == "pair", P.session_id.in_(ids))
            .group_by(P.session_id, iteration_of(P.split)))


def inconsistency_sql(ids: list[str]) -> Any:
    """Share of pairs whose generative judge and implicit reward prefer different sides."""
    g, i = aliased(P), aliased(P)
    disagree = case(((g.probability - 0.5) * (i.probability - 0.5) > 0, 0.0), else_=1.0)
    return (select(g.session_id, iteration_of(g.split).label("it"),
                   func.avg(disagree).label("inconsistency"))
            .join(i, and_(i.session_id == g.session_id, i.model == "irm",
                          i.split == g.split, i.example_id == g.example_id))
            .where(g.model == "grm", g.session_id.in_(ids))
            .group_by(g.session_id, iteration_of(g.split)))


def rows_sql(ids: list[str], model: str) -> Any:
    """Raw prediction rows of one kind (for statistics SQL lacks: ρ, τ, pairwise accuracy)."""
    return (select(P.session_id, iteration_of(P.split).label("it"), P.example_id, P.label,
                   P.predicted, P.probability, P.meta)
            .where(P.model == model, P.session_id.in_(ids)))


def _judge_agreement(rows: Iterable[Any]) -> dict[Key, dict[str, float | None]]:
    grouped: dict[Key, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[(r.session_id, r.it)].append(r)
    out = {}
    for key, rs in grouped.items():
        truth, judged = [r.label for r in rs], [r.predicted for r in rs]
        out[key] = {"judge_oracle_accuracy": pairwise_accuracy(
            [r.meta.get("group") for r in rs], truth, judged),
            "spearman": spearman(truth, judged), "kendall": kendall(truth, judged)}
    return out


def _own_judgement(rows: Iterable[Any]) -> dict[Key, dict[str, float | None]]:
    """How well the judge orders its own candidates (within each prompt, by its expected
    score, stored as ``probability``), and their mean oracle score — the quality of what
    M_{t-1} samples, which DPO trains on."""
    grouped: dict[Key, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[(r.session_id, r.it)].append(r)
    return {key: {"own_judge_accuracy": pairwise_accuracy(
                      [r.example_id.rsplit("#", 1)[0] for r in rs], [r.label for r in rs],
                      [r.probability for r in rs]),
                  "sample_mean": sum(r.label for r in rs) / len(rs)}
            for key, rs in grouped.items()}


def session_iterations(store: Store, study_id: int) -> list[dict[str, Any]]:
    """One row per (session, t) with every per-iteration metric."""
    info = {s["session"]: s for s in sessions(store, study_id)}
    ids = list(info)
    with store.unit_of_work() as uow:
        db = uow.session
        wins = {(r.session_id, r.it): r.win_rate for r in db.execute(win_rate_sql(ids))}
        pairs = {(r.session_id, r.it): r for r in db.execute(pairs_sql(ids))}
        incons = {(r.session_id, r.it): r.inconsistency
                  for r in db.execute(inconsistency_sql(ids))}
        judge = _judge_agreement(db.execute(rows_sql(ids, "judgeset")).all())
        own = _own_judgement(db.execute(rows_sql(ids, "candidate")).all())
        evals = db.execute(rows_sql(ids, "eval")).all()
    means: dict[Key, list[float]] = defaultdict(list)
    for r in evals:
        means[(r.session_id, r.it)].append(r.label)
    out = []
    for (sid, t), labels in sorted(means.items(), key=lambda kv: (info[kv[0][0]]["rep"],
                                                                  kv[0][0], kv[0][1])):
        p = pairs.get((sid, t))
        out.append({"session": sid, "variant": info[sid]["variant"], "rep": info[sid]["rep"],
                    "t": t, "oracle_mean": sum(labels) / len(labels),
                    "win_rate_vs_prev": wins.get((sid, t)),
                    **judge.get((sid, t), {"judge_oracle_accuracy": None, "spearman": None,
                                           "kendall": None}),
                    **own.get((sid, t), {"own_judge_accuracy": None, "sample_mean": None}),
                    "inconsistency_rate": incons.get((sid, t)),
                    "pairs_kept": None if p is None else int(p.pairs_kept or 0),
                    "pairs": None if p is None else p.pairs,
                    "prompts": None if p is None else p.prompts,
                    "pair_precision": None if p is None else p.precision,
                    "similarity": None if p is None else p.similarity})
    return out


METRICS = ("win_rate_vs_prev", "judge_oracle_accuracy", "spearman", "kendall",
           "inconsistency_rate", "pairs_kept", "oracle_mean", "pair_precision", "similarity",
           "own_judge_accuracy", "sample_mean")


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _sd(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def iterations(store: Store, study_id: int) -> list[dict[str, Any]]:
    """Per (variant, t): each metric's mean over the variant's sessions (and its SD)."""
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in session_iterations(store, study_id):
        grouped[(row["variant"], row["t"])].append(row)
    out = []
    for (variant, t), rows in sorted(grouped.items()):
        item: dict[str, Any] = {"variant": variant, "t": t, "sessions": len(rows)}
        for m in METRICS:
            item[m] = _mean([r[m] for r in rows])
            item[f"{m}_sd"] = _sd([r[m] for r in rows])
        out.append(item)
    return out


def comparison(store: Store, study_id: int, metrics: Iterable[str] = (
        "oracle_mean", "judge_oracle_accuracy", "win_rate_vs_prev")) -> dict[str, Any]:
    """SCIR − SRLM at the last iteration, paired by rep (same seed model and prompts)."""
    rows = session_iterations(store, study_id)
    last = max((r["t"] for r in rows), default=0)
    by = {(r["variant"], r["rep"]): r for r in rows if r["t"] == last}
    reps = sorted({rep for v, rep in by if (("scir", rep) in by and ("srlm", rep) in by)})
    out: dict[str, Any] = {"t": last, "reps": reps}
    for m in metrics:
        diffs = [by[("scir", r)][m] - by[("srlm", r)][m] for r in reps
                 if by[("scir", r)][m] is not None and by[("srlm", r)][m] is not None]
        out[m] = {"scir": _mean([by[("scir", r)][m] for r in reps]),
                  "srlm": _mean([by[("srlm", r)][m] for r in reps]),
                  "diff": _mean(diffs), "diff_sd": _sd(diffs), "diffs": diffs}
    return out


PANELS = ("oracle_mean", "win_rate_vs_prev", "judge_oracle_accuracy", "own_judge_accuracy",
          "pair_precision", "inconsistency_rate", "pairs_kept", "similarity")


def plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Curves over iterations, one line per variant (mean ± SD over seeds), as a PNG."""
    with figure(path, rows=2, cols=4, size=(16, 6.5), title=title) as axes:
        for ax, metric in zip(axes.flat, PANELS):
            series = {}
            for variant in sorted({r["variant"] for r in rows}):
                pts = [(r["t"], r[metric], r.get(f"{metric}_sd") or 0.0) for r in rows
                       if r["variant"] == variant and r[metric] is not None]
                if pts:
                    ts, ys, sds = zip(*pts)
                    series[variant] = (ts, ys, [y - d for y, d in zip(ys, sds)],
                                       [y + d for y, d in zip(ys, sds)])
            for variant, (ts, ys, lo, hi) in series.items():  # x differs per variant
                lines_with_bands(ax, ts, {variant: (ys, lo, hi)}, xlabel="iteration t")
            ax.set_title(metric.replace("_", " "))
            if series:
                ax.legend(fontsize=8)
    return path


def report(store: Store, study_id: int, out_dir: Path) -> dict[str, Any]:
    """``tinmen report STUDY``: per-iteration metrics (Markdown table), the curves, and
    SCIR − SRLM at the last iteration."""
    rows = iterations(store, study_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"judge-study-{study_id}.md"
    table.write_text(markdown(rows))
    png = plot(rows, out_dir / f"judge-study-{study_id}.png", title=f"judge study {study_id}")
    ids = [s["session"] for s in sessions(store, study_id)]
    return {"study": study_id, "study_id": study_id, "table": str(table), "plots": [str(png)],
            "iterations": rows, "comparison": comparison(store, study_id),
            "sql": str(win_rate_sql(ids))}


def markdown(rows: list[dict[str, Any]]) -> str:
    cols = ("oracle_mean", "win_rate_vs_prev", "judge_oracle_accuracy", "inconsistency_rate",
            "pairs_kept")
    lines = ["| variant | t | sessions | " + " | ".join(cols) + " |",
             "|---" * (len(cols) + 3) + "|"]
    for r in rows:
        cells = ["—" if r[c] is None else f"{r[c]:.3f}" for c in cols]
        lines.append(f"| {r['variant']} | {r['t']} | {r['sessions']} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- ranking
JUDGE_ROLES = ("auditor", "sft_judge")


def audit_sql(ids: list[str]) -> Any:
    """Fixed judges' score distributions for every (session, t, item): the ranking's table."""
    return (select(P.session_id, iteration_of(P.split).label("it"), P.model, P.example_id,
                   P.label, P.meta)
            .where(P.model.in_([f"audit:{r}" for r in JUDGE_ROLES]),
                   P.session_id.in_(ids))
            .order_by(P.session_id, P.split, P.model, P.example_id))


def rank_inputs(store: Store, study_id: int, levels: int = 6) -> dict[str, Any]:
    """(J, C, M) verdict counts, candidate names and each candidate's oracle mean.

    A candidate is one checkpoint M_t of one session. Each fixed judge's verdict on an
    answer is a draw from its recorded score distribution, with a seed derived from the
    row, so the table is the same every time it is built.
    """
    import random

    import torch

    info = {s["session"]: s for s in sessions(store, study_id)}
    with store.unit_of_work() as uow:
        rows = uow.session.execute(audit_sql(list(info))).all()
    judges = sorted({r.model for r in rows})
    names = sorted({(info[r.session_id]["variant"], info[r.session_id]["rep"], r.it,
                     r.session_id) for r in rows})
    index = {(n[3], n[2]): i for i, n in enumerate(names)}
    counts = torch.zeros((len(judges), len(names), levels))
    oracle: dict[int, dict[str, float]] = defaultdict(dict)
    for r in rows:
        c = index[(r.session_id, r.it)]
        rng = random.Random(f"{r.session_id}/{r.it}/{r.model}/{r.example_id}")
        verdict = rng.choices(range(levels), weights=r.meta["dist"])[0]
        counts[judges.index(r.model), c, verdict] += 1
        oracle[c][r.example_id] = r.label
    return {"judges": judges, "counts": counts,
            "candidates": [f"{v}/rep{rep}/t{t}" for v, rep, t, _ in names],
            "oracle_mean": [sum(oracle[c].values()) / max(len(oracle[c]), 1)
                            for c in range(len(names))]}
