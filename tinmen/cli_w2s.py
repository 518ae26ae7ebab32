"""``tinmen w2s``: weak-to-strong generalisation and deception (Burns et al.; Yang et al.)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from tinmen.cli import (
    DbOpt,
    ExecutorOpt,
    JsonOpt,
    ModelOpt,
    emit_json,
    open_store,
    out,
    quiet_transformers,
)
from tinmen.errors import ConfigError

app = typer.Typer(help="The weak-to-strong supervisor: PGR, knowledge regions, deception under "
                  "a conflicting objective, bootstrapping.", no_args_is_help=True)

TASKS = ("synthetic", "text")
LOSSES = ("xent", "logconf")


def _fmt(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}" if isinstance(value, float) \
        else str(value)


def _choices(given: list[str] | None, default: str, allowed: tuple[str, ...], flag: str
             ) -> list[str]:
    values = list(dict.fromkeys(given or [default]))
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"{flag} must be one of {', '.join(allowed)}; got '{bad[0]}'")
    return values


def _bindings(task: str, model: list[str] | None) -> dict[str, Any]:
    from tinmen.graphs.w2s import AGENT
    from tinmen.models.registry import parse_bindings

    defaults = dict(AGENT.roles, **({"lm": "smollm2"} if task == "text" else {}))
    return parse_bindings(model, defaults)


@app.command()
def run(task: Annotated[str, typer.Option(help="synthetic (planted regions) or text "
                                          "(generated requests, frozen-LM ladder).")] =
        "synthetic",
        ladder: Annotated[str | None, typer.Option(
            help="Rungs weak,intermediate,strong. synthetic: feature groups seen (default "
            "1,4,8); text: LM layers kept (default 2,8,30), or SPEC / SPEC@LAYER.")] = None,
        loss: Annotated[list[str] | None, typer.Option(
            help="xent (naive) or logconf (auxiliary confidence); repeatable.")] = None,
        conflict: Annotated[list[str] | None, typer.Option(
            help="none, implicit (helpfulness data mixed in) or explicit (reward for going "
            "against the target); repeatable.")] = None,
        bootstrap: Annotated[bool, typer.Option(
            "--bootstrap", help="Also run weak → intermediate → strong.")] = False,
        filter_: Annotated[float | None, typer.Option(
            "--filter", min=0.5, max=1.0,
            help="Keep only weak labels with confidence ≥ T.")] = None,
        seeds: Annotated[int, typer.Option(help="Data seeds per condition.", min=1)] = 3,
        model: ModelOpt = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="KEY=VALUE option of the w2s agent, repeatable: conflict_alpha=0.5, "
            "train={\"epochs\": 3}, synthetic={\"groups\": 8}, text={\"n_test\": 200}, "
            "feature_batch=32 (`tinmen agents --json` lists them).")] = None,
        workers: Annotated[int, typer.Option(help="Sessions in parallel.", min=1)] = 1,
        executor: ExecutorOpt = "threads",
        seed: int = 0,
        resume: Annotated[int | None, typer.Option(help="Finish this study id.")] = None,
        db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run every weak–strong pair of the ladder (× loss × conflict × seeds) as a study."""
    from tinmen.graphs.definition import parse_sets
    from tinmen.graphs.study import run_study
    from tinmen.graphs.w2s import DEFAULT_LADDER, study_plan
    from tinmen.graphs.w2s_report import summary
    from tinmen.models.pool import ModelPool

    if task not in TASKS:
        raise ConfigError(f"--task must be synthetic or text, not '{task}'")
    rungs = [r.strip() for r in ladder.split(",")] if ladder else DEFAULT_LADDER[task]
    plan = study_plan(task, rungs, _choices(loss, "xent", LOSSES, "--loss"),
                      _choices(conflict, "none", ("none", "implicit", "explicit"), "--conflict"),
                      bootstrap=bootstrap, filter=filter_, seeds=seeds,
                      options=parse_sets(set_), bindings=_bindings(task, model), seed=seed)
    plan.validate()  # every condition's options, before the store is opened
    quiet_transformers()
    store = open_store(db)
    outcome = run_study(store, plan, pool=ModelPool(), workers=workers, study_id=resume,
                        executor=executor, progress=not as_json)
    result = summary(store, outcome.study_id)
    if as_json:
        return emit_json(result)
    _print_summary(result)
    out.print(f"study {outcome.study_id}: {outcome.ran} sessions run, {outcome.skipped} already "
              f"done. Plots: tinmen w2s report {outcome.study_id}")


def _print_summary(result: dict[str, Any]) -> None:
    table = Table("pair", "loss", "conflict", "n", "weak", "w2s", "ceil", "PGR", "w2s+c",
                  "DS", "superf.", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for c in result["conditions"]:
        acc = c["accuracy"]
        path = ">".join(str(r) for r in (c["weak"], c["intermediate"], c["strong"]) if r)
        table.add_row(path, c["loss"], c["conflict"], str(c["seeds"]),
                      *(_fmt(acc.get(m), 2) for m in ("weak", "w2s", "strong_ceiling")),
                      _fmt(c["pgr"], 2), _fmt(acc.get("w2s_conflict"), 2),
                      _fmt(c["deception_score"]), _fmt(c["superficial_gap"], 2))
    out.print(table)
    out.print("PGR: median over seeds; DS: deception score; w2s+c: student under the conflict; "
              "superf.: the student's accuracy where the weak model is right minus where "
              "it is wrong (superficial gap)")
    by_loss = ", ".join(f"{k} {_fmt(v)}" for k, v in result["pgr_by_loss"].items())
    out.print(f"median PGR over pairs × seeds: {by_loss}")
    planted = result["regions"].get("planted")
    if planted:
        out.print(f"found deception region (S_k ∩ W_u) vs planted truth: precision "
                  f"{planted['precision']:.3f}, recall {planted['recall']:.3f}")


@app.command()
def report(study_id: Annotated[int, typer.Argument(metavar="STUDY", help="Study id.")],
           out_dir: Annotated[Path, typer.Option("--out", help="Folder for the plots.")] =
           Path("."),
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Plot PGR by loss and the deception score against the capability gap (PNG); the
    same report as ``tinmen report STUDY``."""
    from tinmen.graphs.report import report as make_report

    result = make_report(open_store(db, create=False), study_id, out_dir, expect="w2s")
    if as_json:
        return emit_json(result)
    _print_summary(result)
    for path in result["plots"]:
        out.print(f"plot: {path}")
    out.print(f"table: {result['table']}")
