"""``tinmen shopper``: the principal-agent study (Phelps & Ranson 2023) and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tinmen.cli import DbOpt, ExecutorOpt, JsonOpt, ModelOpt, emit_json, open_store, out

app = typer.Typer(help="The principal-agent shopper: who reads the explanation vs. how often "
                  "the agent overrides its customer.", no_args_is_help=True)


def _bindings(items: list[str] | None, roles: dict[str, str]) -> dict[str, list[Any]]:
    """ROLE=SPEC items grouped by role: the agent role may repeat (one model per cell, an
    axis of the study), every other role takes the last one given. Each item is read by
    the one ROLE=SPEC parser (parse_bindings), roles without an item take their default."""
    from tinmen.models.registry import parse_bindings

    optional = {role: "" for role in roles}
    given: dict[str, list[Any]] = {}
    for item in items or []:
        for role, spec in parse_bindings([item], optional).items():
            given.setdefault(role, []).append(spec)
    defaults = parse_bindings(None, roles)
    return {role: given.get(role) or [defaults[role]] for role in defaults}


def _print_cells(rows: list[dict[str, Any]]) -> None:
    table = Table("scenario", "condition", "model", "T", "controls", "n", "parsed", "override",
                  "95% CI")
    for r in rows:
        rate = "—" if r["override_rate"] is None else f"{r['override_rate']:.2f}"
        table.add_row(r["scenario"], r["condition"], r["model"], str(r["temperature"]),
                      f"{'rev' if r['labels_reversed'] else 'std'}/{r['case']}", str(r["n"]),
                      str(r["parsed"]), rate, f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
    out.print(table)


def _print_regressions(regs: list[dict[str, Any]]) -> None:
    """Coefficients with 95% intervals per stratum, then the one-line effect test (or why
    no model was fitted)."""
    from tinmen.graphs.shopper_report import regression_summary

    for r in regs:
        temps = ",".join(f"{t:g}" for t in r["temperatures"])
        head = f"{r['scenario']} / {r['model']} / T={temps} ({r['parsed']} of {r['n']} parsed)"
        if r["terms"]:
            table = Table("term", "coef (log-odds)", "95% CI", "p", title=head)
            for t in r["terms"]:
                table.add_row(t["term"], f"{t['coef']:.2f}",
                              f"[{t['ci_low']:.2f}, {t['ci_high']:.2f}]", f"{t['p']:.3g}")
            out.print(table)
        else:
            out.print(head, highlight=False, markup=False, soft_wrap=True)
        out.print("  " + regression_summary(r), highlight=False, markup=False, soft_wrap=True)


@app.command()
def study(scenario: Annotated[list[str] | None, typer.Option(
              help="film, car (the paper) or market (extension); repeatable. Default: film "
              "and car.")] = None,
          model: ModelOpt = None,
          temperature: Annotated[list[float] | None, typer.Option(
              help="Sampling temperature of the answer (0-5); repeatable. Default 0.2.")
          ] = None,
          reps: Annotated[int, typer.Option(help="Sessions per cell.", min=1)] = 30,
          controls: Annotated[bool, typer.Option(
              "--controls", help="Add the paper's controls: reversed labels × prompt case "
              "(upper / lower / standard).")] = False,
          workers: Annotated[int, typer.Option(help="Sessions run in parallel.", min=1)] = 1,
          executor: ExecutorOpt = "threads",
          max_new_tokens: Annotated[int, typer.Option(
              help="Token limit of the free-text answer (1-4096; the paper: 500).")] = 500,
          seed: int = 0,
          resume: Annotated[int | None, typer.Option(
              help="Finish an interrupted study with this id.")] = None,
          db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run the grid; every trial is a session in the store. Prints the cells; progress on
    stderr."""
    from tinmen.graphs.shopper import AGENT, MARKET_AGENT, study_plan
    from tinmen.graphs.shopper_report import cell_json, cells
    from tinmen.graphs.study import run_study
    from tinmen.models.pool import ModelPool

    scenarios = scenario or ["film", "car"]
    bound = _bindings(model, MARKET_AGENT.roles if "market" in scenarios else AGENT.roles)
    plan = study_plan(scenarios, {spec.name: spec for spec in bound["agent"]},
                      temperature or [0.2], reps, controls=controls,
                      customer=bound.get("customer", [None])[-1],
                      max_new_tokens=max_new_tokens, seed=seed)
    store = open_store(db)
    outcome = run_study(store, plan, pool=ModelPool(), workers=workers, study_id=resume,
                        executor=executor, progress=True)
    rows = cells(store, outcome.study_id)
    if as_json:
        return emit_json({"cells": [cell_json(r) for r in rows],
                          "study_id": outcome.study_id})
    _print_cells(rows)
    out.print(f"study {outcome.study_id}: {outcome.ran} sessions run, {outcome.skipped} "
              f"already done. Report: tinmen report {outcome.study_id}")


@app.command()
def report(study_id: Annotated[int, typer.Argument(metavar="STUDY", help="Study id.")],
           out_dir: Annotated[Path, typer.Option("--out", help="Folder for the table and "
                                                 "the plot.")] = Path("."),
           sql: Annotated[bool, typer.Option("--sql", help="Also print the SQL query that "
                                             "computes the cells.")] = False,
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Write the study's table (Markdown) and plot (PNG: override rate by condition); the
    same as `tinmen report STUDY`, with the cells and the logistic regression of override on
    the information condition printed, and --sql."""
    from tinmen.graphs.report import report as make_report
    from tinmen.graphs.shopper_report import cell_sql, cells

    store = open_store(db, create=False)
    result = make_report(store, study_id, out_dir, expect=("shopper", "shopper-market"))
    query = cell_sql(store, study_id) if sql else None
    if as_json:
        return emit_json({**result, **({"sql": query} if sql else {})})
    _print_cells(cells(store, study_id))
    _print_regressions(result["regression"])
    out.print(f"table: {result['table']}\nplot:  {result['plots'][0]}")
    if sql:
        out.print(query, highlight=False, markup=False)
