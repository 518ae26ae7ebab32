"""The shopper study's cells, each computed by one SQL query over the store, and its plot.

A cell is (scenario, information condition, model, temperature[, controls]). For the
paper's task, override = the purchase decision's un-swapped item differs from the
condition's ``customer_item``; the query counts sessions, parsed answers (robust parse and
the paper's regex) and overrides. For the marketplace it averages the per-session metrics
the graph recorded (override, welfare loss, principal gain). Rates and Wilson intervals are
arithmetic on those counts (statsmodels); :func:`cell_sql` prints the exact SQL.

Why one SQL query rather than the analysis DataFrames (storage/analysis.py): a cell is
*defined* by the query that ``--sql`` prints and docs/shopper.md shows, so anyone can
recompute every cell in ``sqlite3``; a DataFrame pipeline would print one thing and compute
another. The query also needs the condition params (scenario, customer item) that the
DataFrames do not carry. :func:`report` is the ``tinmen report`` entry of the agent.

The test of the effect is per session, not per cell: :func:`override_frame` is the analysis
API's purchase decisions joined to their condition params, and :func:`regression` fits a
logistic regression of override on the information condition with the label-order and case
controls (statsmodels, by formula), beside the cells' Wilson intervals.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, and_, case, func, literal_column, select
from sqlalchemy.dialects import sqlite
from tinmen.agents.shopper.scenarios import INFO_CONDITIONS
from tinmen.agents.shopper.stats import PAPER_GPT35, firth_logit, rate, wilson
from tinmen.graphs.handoffs import handoff_summary
from tinmen.graphs.plotting import figure
from tinmen.storage import Store, orm

P = orm.Condition.params
KEYS = ("scenario", "condition", "model", "temperature", "labels_reversed", "case")


# The same cells for the paper's task in plain SQLite SQL (shown in docs/shopper.md;
# tests check it returns what :func:`cells` returns).
PAPER_SQL = """
SELECT json_extract(c.params, '$.scenario')        AS scenario,
       json_extract(c.params, '$.info')            AS condition,
       json_extract(c.params, '$.model')           AS model,
       json_extract(c.params, '$.temperature')     AS temperature,
       json_extract(c.params, '$.labels_reversed') AS labels_reversed,
       json_extract(c.params, '$.case')            AS "case",
       COUNT(*)                                    AS n,
       COUNT(json_extract(d.chosen, '$.item'))     AS parsed,
       TOTAL(json_extract(d.chosen, '$.item') != json_extract(c.params, '$.customer_item'))
                                                   AS overrides,
       TOTAL(json_extract(d.chosen, '$.item') != json_extract(c.params, '$.customer_item'))
         / COUNT(json_extract(d.chosen, '$.item')) AS override_rate
FROM session s
JOIN condition c ON c.id = s.condition_id
JOIN decision d ON d.session_id = s.id AND d.kind = 'purchase'
WHERE s.study_id = :study AND s.mode = 'live' AND s.status = 'completed'
GROUP BY 1, 2, 3, 4, 5, 6
"""


def _axes() -> list[Any]:
    return [P["scenario"].as_string().label("scenario"),
            P["info"].as_string().label("condition"),
            P["model"].as_string().label("model"),
            P["temperature"].as_float().label("temperature"),
            P["labels_reversed"].as_boolean().label("labels_reversed"),
            P["case"].as_string().label("case")]


def _study_sessions(stmt: Select[Any], study_id: int) -> Select[Any]:
    # grouped by position (the axes are the first columns), not by repeating the
    # expressions: PostgreSQL cannot tell that two JSON lookups with separately bound keys
    # (params ->> $1 in SELECT, params ->> $7 in GROUP BY) are the same column
    axes: list[Any] = [literal_column(str(i)) for i in range(1, len(KEYS) + 1)]
    return (stmt.select_from(orm.Session)
            .join(orm.Condition, orm.Session.condition_id == orm.Condition.id)
            .where(orm.Session.study_id == study_id, orm.Session.mode == "live",
                   orm.Session.status == "completed")
            .group_by(*axes).order_by(*axes))


def paper_query(study_id: int) -> Select[Any]:
    """Counts per cell of the paper's task, from purchase decisions and condition params."""
    item = orm.Decision.chosen["item"].as_integer()
    paper_item = orm.Decision.chosen["paper_item"].as_integer()
    customer = P["customer_item"].as_integer()
    m = orm.Metric
    stmt: Select[Any] = select(*_axes(), func.count(orm.Session.id).label("n"),
                               func.count(item).label("parsed"),
                               func.sum(case((item != customer, 1), else_=0))
                               .label("overrides"),
                               func.count(paper_item).label("parsed_paper"),
                               func.sum(case((paper_item != customer, 1), else_=0))
                               .label("overrides_paper"),
                               func.avg(m.value).label("p_override"))
    stmt = _study_sessions(stmt, study_id)
    return (stmt.join(orm.Decision, and_(orm.Decision.session_id == orm.Session.id,
                                         orm.Decision.kind == "purchase"))
            .outerjoin(m, and_(m.session_id == orm.Session.id, m.name == "override_prob")))


def market_query(study_id: int) -> Select[Any]:
    """Counts and means per cell of the marketplace, from the metrics each session wrote."""
    m = orm.Metric

    def when(name: str) -> Any:
        return case((m.name == name, m.value))

    stmt = select(*_axes(), func.count(func.distinct(orm.Session.id)).label("n"),
                  func.sum(when("parsed")).label("parsed"),
                  func.sum(when("override")).label("overrides"),
                  func.avg(when("welfare_loss")).label("welfare_loss"),
                  func.avg(when("principal_gain")).label("principal_gain"),
                  func.avg(when("asked")).label("asked"))
    return _study_sessions(stmt, study_id).join(m, m.session_id == orm.Session.id)


def query_for(store: Store, study_id: int) -> Select[Any]:
    with store.unit_of_work() as uow:
        graph = uow.studies.get(study_id).graph
    return market_query(study_id) if graph == "shopper-market" else paper_query(study_id)


def cell_sql(store: Store, study_id: int) -> str:
    """The exact SQL (SQLite dialect, values inlined) behind :func:`cells`."""
    stmt = query_for(store, study_id)
    return str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def cells(store: Store, study_id: int) -> list[dict[str, Any]]:
    """One dict per cell with counts, override rate and its Wilson 95% interval."""
    stmt = query_for(store, study_id)
    with store.unit_of_work() as uow:
        rows = [dict(r._mapping) for r in uow.session.execute(stmt)]
    out = []
    for row in rows:
        parsed, overrides = int(row["parsed"] or 0), int(row["overrides"] or 0)
        lo, hi = wilson(overrides, parsed)
        row.update(parsed=parsed, overrides=overrides, override_rate=rate(overrides, parsed),
                   ci_low=lo, ci_high=hi, unparsed=int(row["n"]) - parsed)
        if "parsed_paper" in row:
            row["override_rate_paper"] = rate(int(row["overrides_paper"] or 0),
                                              int(row["parsed_paper"] or 0))
        out.append(row)
    return sorted(out, key=_order)


def _order(row: dict[str, Any]) -> tuple[Any, ...]:
    info = INFO_CONDITIONS.index(row["condition"]) if row["condition"] in INFO_CONDITIONS else 9
    return (row["scenario"], row["model"], row["temperature"], info,
            bool(row["labels_reversed"]), row["case"])


def pooled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells summed over the controls (labels, case): one per scenario/condition/model/T."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = tuple(r[k] for k in KEYS[:4])
        g = groups.setdefault(key, {**{k: r[k] for k in KEYS[:4]}, "n": 0, "parsed": 0,
                                    "overrides": 0})
        for k in ("n", "parsed", "overrides"):
            g[k] += int(r[k])
    for g in groups.values():
        g["override_rate"] = rate(g["overrides"], g["parsed"])
        g["ci_low"], g["ci_high"] = wilson(g["overrides"], g["parsed"])
    return list(groups.values())


def plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Override rate by information condition, one panel per model × scenario (PNG)."""
    data = pooled(rows)
    models = sorted({r["model"] for r in data}) or [""]
    scenarios = sorted({r["scenario"] for r in data}) or [""]
    temps = sorted({r["temperature"] for r in data})
    with figure(path, rows=len(models), cols=len(scenarios), title=title, sharey=True) as axes:
        for (mi, model), (si, scenario) in itertools.product(enumerate(models),
                                                             enumerate(scenarios)):
            _panel(axes[mi][si], data, model, scenario, temps)
        axes[0][0].set_ylabel("override rate (Wilson 95%)")
        axes[0][-1].legend(fontsize=7, loc="lower right")  # one legend: same in every panel
    return path


def _panel(ax: Any, data: list[dict[str, Any]], model: str, scenario: str,
           temps: list[float]) -> None:
    """One model × scenario: a bar per (condition, temperature), the paper's GPT-3.5 rates
    as open diamonds."""
    conds = list(INFO_CONDITIONS)
    width = 0.8 / max(1, len(temps))
    centre = width * (len(temps) - 1) / 2
    for j, t in enumerate(temps):
        cell = {r["condition"]: r for r in data
                if (r["model"], r["scenario"], r["temperature"]) == (model, scenario, t)}
        shown = [c for c in conds if c in cell]
        ys = [cell[c]["override_rate"] or 0.0 for c in shown]
        err = [[y - cell[c]["ci_low"] for c, y in zip(shown, ys)],
               [cell[c]["ci_high"] - y for c, y in zip(shown, ys)]]
        ax.bar([conds.index(c) + j * width for c in shown], ys, width, yerr=err, capsize=3,
               label=f"T={t}")
    ref = [(i, PAPER_GPT35[(scenario, c)]) for i, c in enumerate(conds)
           if (scenario, c) in PAPER_GPT35]
    if ref:
        ax.plot([i + centre for i, _ in ref], [v for _, v in ref], "kD",
                markerfacecolor="none", label="paper, GPT-3.5 T=0.2")
    ax.set_xticks([i + centre for i in range(len(conds))], conds, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_title(f"{model} — {scenario}", fontsize=9)


def report(store: Store, study_id: int, out_dir: Path) -> dict[str, Any]:
    """The study's cells as a Markdown table and the override plot (``tinmen report``)."""
    rows = cells(store, study_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"shopper-study-{study_id}.md"
    regs = regressions(store, study_id)
    table.write_text(markdown_table(rows) + "\n".join(regression_lines(regs))
                     + ("\n" if regs else "") + handoff_summary(store, study=study_id))
    png = plot(rows, out_dir / f"shopper-study-{study_id}.png", title=f"study {study_id}")
    return {"study": study_id, "table": str(table), "plots": [str(png)],
            "cells": [cell_json(r) for r in rows], "regression": regs}


CELL_KEYS = ("scenario", "condition", "model", "temperature", "n", "parsed", "override_rate",
             "ci_low", "ci_high")
EXTRA_KEYS = ("labels_reversed", "case", "unparsed", "override_rate_paper", "parsed_paper",
              "p_override", "welfare_loss", "principal_gain", "asked")


def cell_json(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as ``--json`` and the report show it."""
    return {k: cell[k] for k in CELL_KEYS + EXTRA_KEYS if k in cell}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The cells as a Markdown table (what `tinmen shopper report` writes beside the plot)."""
    market = any("welfare_loss" in r for r in rows)
    head = ["scenario", "condition", "model", "T", "controls", "n", "parsed", "override",
            "95% CI"] + (["welfare loss", "principal gain", "asked"] if market
                         else ["paper-regex parsed", "paper-regex override", "P(override)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ctl = f"{'rev' if r['labels_reversed'] else 'std'}/{r['case']}"
        extra = ([_num(r.get("welfare_loss")), _num(r.get("principal_gain"), 1),
                  _num(r.get("asked"))] if market else
                 [str(r.get("parsed_paper")), _num(r.get("override_rate_paper")),
                  _num(r.get("p_override"))])
        lines.append("| " + " | ".join([
            str(r["scenario"]), str(r["condition"]), str(r["model"]), str(r["temperature"]),
            ctl, str(r["n"]), str(r["parsed"]), _num(r["override_rate"]),
            f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", *extra]) + " |")
    return "\n".join(lines) + "\n"


def _num(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


# --------------------------------------------------------------------------- the effect
MIN_PARSED = 10  # parsed answers a stratum needs before a regression is attempted
REFERENCE = "neither"  # the baseline information condition: nobody reads the explanation
FRAME_COLUMNS = ("session_id", "scenario", "info", "model", "temperature", "labels_reversed",
                 "case", "item", "override")


def override_frame(store: Store, study_id: int) -> pd.DataFrame:
    """One row per completed live session of the paper's task (the analysis API's purchase
    decisions joined to their condition params): ``override`` is 1.0 / 0.0, NaN when the
    answer was not parsed."""
    from tinmen.storage import analysis

    found = analysis.decisions(store, study=study_id, kind="purchase", mode="live",
                               status="completed")
    with store.unit_of_work() as uow:
        params = {c.key: dict(c.params) for c in uow.studies.get(study_id).conditions}
    rows = []
    for r in found.to_dict(orient="records"):
        p, item = params[r["condition"]], (r["chosen"] or {}).get("item")
        if p.get("customer_item") is None:  # the marketplace: no fixed customer item
            continue
        rows.append({"session_id": r["session_id"], "scenario": p["scenario"],
                     "info": p["info"], "model": p["model"],
                     "temperature": float(p["temperature"]),
                     "labels_reversed": bool(p.get("labels_reversed", False)),
                     "case": p.get("case", "standard"), "item": item,
                     "override": np.nan if item is None else float(item != p["customer_item"])})
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def regressions(store: Store, study_id: int) -> list[dict[str, Any]]:
    """One logistic regression per scenario × model, temperature a control (see
    :func:`regression`); empty for the marketplace."""
    frame = override_frame(store, study_id)
    return [regression(g, scenario=sc, model=m,
                       temperatures=sorted(float(t) for t in set(g["temperature"])))
            for (sc, m), g in frame.groupby(["scenario", "model"], sort=True)]


def regression(frame: pd.DataFrame, **stratum: Any) -> dict[str, Any]:
    """``override ~ C(info, Treatment("neither")) [+ labels_reversed] [+ C(case)]
    [+ C(temperature)]`` by maximum likelihood (statsmodels ``Logit``), over the parsed
    answers of one stratum (a scenario and a model).

    Controls enter only when they vary in the stratum (the paper's grid: temperature; with
    ``--controls`` also the label order and the prompt case). Returns the coefficients (log-odds
    against ``neither``) with Wald 95 % intervals, the Wald χ² test of the information
    condition as a whole (``effect``), and the Pearson χ² test of override × condition
    (``association``, which needs no model). When a condition or control level has every
    answer the same (separation: the MLE is infinite), the same model is fitted by Firth's
    penalized likelihood instead (``method`` "firth", ``note`` says which level separates;
    the effect is then the penalized likelihood ratio test). When no model can be fitted —
    too few parsed answers, one condition, no variation at all — ``fitted`` is False and
    ``note`` says why in one line.
    """
    data = frame.dropna(subset=["override"])
    out: dict[str, Any] = {**stratum, "n": int(len(frame)), "parsed": int(len(data)),
                           "formula": None, "fitted": False, "method": "mle", "note": None,
                           "terms": [], "effect": None, "association": None}
    infos = [c for c in INFO_CONDITIONS if c in set(data["info"])]
    k = int(data["override"].sum())
    if len(data) < MIN_PARSED:
        out["note"] = (f"not fitted: too few parsed answers ({len(data)} of {len(frame)}; "
                       f"needs {MIN_PARSED})")
        return out
    if len(infos) < 2:
        out["note"] = f"not fitted: parsed answers in one information condition only ({infos[0]})"
        return out
    if data["override"].nunique() == 1:
        out["note"] = (f"not fitted: no variation, {'every' if k else 'no'} parsed answer "
                       f"overrides ({k} of {len(data)})")
        return out
    out["association"] = _association(data)
    ref = REFERENCE if REFERENCE in infos else infos[0]
    terms = [f'C(info, Treatment("{ref}"))']
    if data["labels_reversed"].nunique() > 1:
        terms.append("labels_reversed")
    if data["case"].nunique() > 1:
        base = "standard" if "standard" in set(data["case"]) else sorted(set(data["case"]))[0]
        terms.append(f'C(case, Treatment("{base}"))')
    if data["temperature"].nunique() > 1:
        terms.append("C(temperature)")
    out["formula"] = "override ~ " + " + ".join(terms)
    constant = [f"{col}={level}" for col in ("info", "labels_reversed", "case", "temperature")
                for level, g in data.groupby(col) if data[col].nunique() > 1
                and g["override"].nunique() == 1]
    if constant:  # the plain MLE is infinite: Firth's penalized likelihood stays finite
        out["method"] = "firth"
        out["note"] = (f"separation: every parsed answer is the same in {', '.join(constant)}, "
                       "so the plain MLE is infinite; fitted by Firth's penalized likelihood")
        return {**out, **_fit_firth(out["formula"], data, ref)}
    return {**out, **_fit(out["formula"], data, ref)}


def _fit(formula: str, data: pd.DataFrame, ref: str) -> dict[str, Any]:
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    frame = _model_frame(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            res = smf.logit(formula, frame).fit(disp=0)
            wald = res.wald_test_terms(scalar=True).table
        except (PerfectSeparationWarning, ConvergenceWarning, np.linalg.LinAlgError) as exc:
            return {"note": f"not fitted: {type(exc).__name__}: {str(exc).splitlines()[0]}"}
    ci = res.conf_int(alpha=0.05)
    terms = [{"term": _term_name(name, ref), "coef": float(res.params[name]),
              "ci_low": float(ci.loc[name, 0]), "ci_high": float(ci.loc[name, 1]),
              "p": float(res.pvalues[name])} for name in res.params.index]
    info_term = next(t for t in wald.index if t.startswith("C(info"))
    return {"fitted": True, "terms": terms, "nobs": int(res.nobs),
            "effect": {"test": "Wald chi2, information condition",
                       "chi2": float(wald.loc[info_term, "statistic"]),
                       "df": int(wald.loc[info_term, "df_constraint"]),
                       "p": float(wald.loc[info_term, "pvalue"])}}


def _model_frame(data: pd.DataFrame) -> pd.DataFrame:
    """The parsed answers as the formula reads them: 0/1 override, boolean label order."""
    return data.assign(override=data["override"].astype(float),
                       labels_reversed=data["labels_reversed"].astype(bool))


def _fit_firth(formula: str, data: pd.DataFrame, ref: str) -> dict[str, Any]:
    """The same model by Firth's penalized likelihood (agents/shopper/stats.py): Wald 95 %
    intervals from the penalized information, and the penalized likelihood ratio test of
    the information condition (its coefficients held at 0)."""
    import statsmodels.formula.api as smf
    from scipy import stats

    frame = _model_frame(data)
    model = smf.logit(formula, frame)  # the design matrix only (patsy, by formula)
    names = list(model.exog_names)
    info_cols = [i for i, n in enumerate(names) if n.startswith("C(info")]
    try:
        full = firth_logit(model.endog, model.exog)
        null = firth_logit(model.endog, model.exog, zero=info_cols)
    except np.linalg.LinAlgError as exc:
        return {"fitted": False, "note": f"not fitted: separation, and Firth's fit failed: {exc}"}
    z = stats.norm.ppf(0.975)
    terms = []
    for name, coef, se in zip(names, full.params, full.bse, strict=True):
        terms.append({"term": _term_name(name, ref), "coef": float(coef),
                      "ci_low": float(coef - z * se), "ci_high": float(coef + z * se),
                      "p": float(2 * stats.norm.sf(abs(coef / se)))})
    chi2 = max(0.0, 2.0 * (full.loglik - null.loglik))
    return {"fitted": True, "terms": terms, "nobs": int(len(frame)),
            "effect": {"test": "penalized LR chi2, information condition", "chi2": chi2,
                       "df": len(info_cols), "p": float(stats.chi2.sf(chi2, len(info_cols)))}}


def _association(data: pd.DataFrame) -> dict[str, Any]:
    from statsmodels.stats.contingency_tables import Table

    res = Table(pd.crosstab(data["info"], data["override"])).test_nominal_association()
    return {"test": "Pearson chi2, override x condition", "chi2": float(res.statistic),
            "df": int(res.df), "p": float(res.pvalue)}


def _term_name(name: str, ref: str) -> str:
    """``C(info, Treatment("neither"))[T.both]`` -> ``info=both (vs neither)``."""
    if name == "Intercept":
        return f"intercept (info={ref})"
    if name.startswith("C(info"):
        return f"info={name.split('[T.')[1].rstrip(']')} (vs {ref})"
    if name.startswith("labels_reversed"):
        return "labels reversed"
    if name.startswith("C(case"):
        base = name.split('Treatment("')[1].split('")')[0]
        return f"case={name.split('[T.')[1].rstrip(']')} (vs {base})"
    if name.startswith("C(temperature"):
        return f"T={name.split('[T.')[1].rstrip(']')} (vs lowest)"
    return name


def regression_lines(regs: list[dict[str, Any]]) -> list[str]:
    """The regressions as Markdown: one table of terms, then one line per stratum."""
    if not regs:
        return []
    lines = ["", "Logistic regression of override on the information condition "
             "(log-odds vs the reference, Wald 95 % intervals; fit: maximum likelihood by "
             "statsmodels Logit, or Firth's penalized likelihood where a level separates):",
             "", "| scenario | model | T | parsed | fit | term | coef | 95% CI | p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in regs:
        head = [str(r["scenario"]), str(r["model"]), _temps(r),
                f"{r['parsed']}/{r['n']}", str(r.get("method", "mle"))]
        for t in r["terms"]:
            lines.append("| " + " | ".join(head + [
                t["term"], f"{t['coef']:.2f}", f"[{t['ci_low']:.2f}, {t['ci_high']:.2f}]",
                f"{t['p']:.3g}"]) + " |")
        if not r["terms"]:
            lines.append("| " + " | ".join(head[:4] + ["—"] * 5) + " |")
    lines.append("")
    for r in regs:
        lines.append(f"- {r['scenario']} / {r['model']} / T={_temps(r)}: "
                     + regression_summary(r))
    return lines


def _temps(r: dict[str, Any]) -> str:
    return ",".join(f"{t:g}" for t in r["temperatures"])


def regression_summary(r: dict[str, Any]) -> str:
    """One line: the effect test, or why there is no model; the association test."""
    parts = []
    if r["fitted"]:
        e = r["effect"]
        if r.get("note"):  # fitted another way (separation: Firth), and why
            parts.append(str(r["note"]))
        parts.append(f"{r['formula']}; condition effect {e['test'].split(',')[0]} "
                     f"= {e['chi2']:.2f} (df {e['df']}), p = {e['p']:.3g}")
    else:
        parts.append(str(r["note"]))
    a = r.get("association")
    if a:
        parts.append(f"Pearson chi2 (override x condition) = {a['chi2']:.2f} (df {a['df']}), "
                     f"p = {a['p']:.3g}")
    return "; ".join(parts)
