"""Reports of a study: the agent's own (``AgentDef.report``) or a generic one.

The generic report takes each session's last value of every metric, and per condition
gives the mean with a 95% t-interval (scipy), as a table and a bar plot per metric — what a
researcher looks at first for any agent that records metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from tinmen.graphs.definition import AgentDef
from tinmen.graphs.plotting import bars_with_intervals, figure
from tinmen.graphs.registry import agent_for_session
from tinmen.storage import Store, analysis

from tinmen.errors import ConfigError
from tinmen.plugins import load_reference


def mean_interval(values: pd.Series, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a t-interval (NaN bounds for fewer than two values)."""
    from scipy import stats

    clean = values.dropna().astype(float)
    mean = float(clean.mean()) if len(clean) else math.nan
    if len(clean) < 2 or float(clean.std()) == 0.0:
        return mean, (mean if len(clean) >= 2 else math.nan), (mean if len(clean) >= 2
                                                               else math.nan)
    low, high = stats.t.interval(level, len(clean) - 1, loc=mean, scale=stats.sem(clean))
    return mean, float(low), float(high)


def condition_table(store: Store, study: int) -> pd.DataFrame:
    """Per condition × metric: sessions, mean, 95% interval of each session's last value."""
    frame = analysis.metrics(store, study=study, status="completed", mode="live")
    cols = ["condition", "metric", "n", "mean", "ci_low", "ci_high"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    last = frame.groupby(["condition", "session_id", "name"], dropna=False)["value"].last()
    rows = []
    for (cond, name), values in last.groupby(level=["condition", "name"], dropna=False):
        mean, low, high = mean_interval(values)
        rows.append({"condition": cond, "metric": name, "n": len(values), "mean": mean,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=cols)


def generic_report(store: Store, study: int, out_dir: Path) -> dict[str, Any]:
    table = condition_table(store, study)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"study-{study}.md"
    md.write_text(_markdown(table))
    result: dict[str, Any] = {"study": study, "table": str(md),
                              "rows": table.to_dict(orient="records"), "plots": []}
    metrics = list(dict.fromkeys(table["metric"]))
    if metrics:
        png = out_dir / f"study-{study}.png"
        with figure(png, cols=len(metrics), title=f"study {study}") as axes:
            for ax, name in zip(axes[0], metrics):
                part = table[table["metric"] == name]
                bars_with_intervals(ax, [str(c) for c in part["condition"]], part["mean"],
                                    part["ci_low"], part["ci_high"], ylabel=name)
        result["plots"].append(str(png))
    return result


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| condition | metric | n | mean | 95% CI |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.condition} | {r.metric} | {r.n} | {r.mean:.4g} | "
                     f"[{r.ci_low:.4g}, {r.ci_high:.4g}] |")
    return "\n".join(lines) + "\n"


def check_study_agent(store: Store, study: int, expect: str | tuple[str, ...]) -> None:
    """A ``tinmen AGENT report`` / ``rank`` of another agent's study is one line, exit 2."""
    with store.unit_of_work() as uow:
        graph = uow.studies.get(study).graph
    allowed = (expect,) if isinstance(expect, str) else expect
    if graph not in allowed:
        raise ConfigError(f"study {study} is a '{graph}' study, not a '{allowed[0]}' one; "
                          f"report it with `tinmen report {study}`")


def study_agent(store: Store, study: int) -> AgentDef:
    with store.unit_of_work() as uow:
        row = uow.studies.get(study)
    return agent_for_session(row.graph, row.graph_ref)


def report(store: Store, study: int, out_dir: Path, *, generic: bool = False,
           expect: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """The agent's report of ``study`` if it has one (and ``generic`` is not asked), else
    the generic one. ``expect`` (an agent's own ``report`` command) refuses, before
    anything is written, a study of another agent."""
    if expect is not None:
        check_study_agent(store, study, expect)
    agent = study_agent(store, study)
    if agent.report and not generic:
        return dict(load_reference(agent.report, what="report")(store, study, out_dir))
    return generic_report(store, study, out_dir)
