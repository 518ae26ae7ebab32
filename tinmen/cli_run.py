"""Generic commands for any agent — a built-in name, an installed package's agent, or
``path/to/file.py:ATTR`` in the user's project: ``run``, ``agents``, ``study run``,
``studies``, ``report``, ``export``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tinmen.cli import (
    DbOpt,
    ExecutorOpt,
    JsonOpt,
    ModelOpt,
    TrustOpt,
    emit_json,
    err,
    open_store,
    out,
    quiet_transformers,
)
from tinmen.errors import ConfigError

AgentArg = Annotated[str, typer.Argument(
    metavar="AGENT", help="A registered agent (see `tinmen agents`), an installed package's "
    "agent, or an import path: path/to/file.py:ATTR or package.module:ATTR.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="KEY=VALUE option of the agent, repeatable (VALUE as JSON when it parses); "
    "`tinmen agents --json` lists each agent's options.")]

study_app = typer.Typer(help="Studies of any agent: a grid of conditions × reps × model "
                        "assignments.", no_args_is_help=True)


def parse_input(text: str | None) -> dict[str, Any]:
    """``--input``: a JSON object, or a path to a .json / .toml file holding one."""
    if text is None:
        return {}
    path = Path(text)
    try:
        if text.endswith((".json", ".toml")) and path.is_file():
            raw = path.read_text(encoding="utf-8")
            if text.endswith(".toml"):
                import tomllib

                return tomllib.loads(raw)
            data = json.loads(raw)
        else:
            data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--input must be a JSON object or a .json/.toml file: {exc}") from exc
    except RecursionError:
        raise ConfigError("--input is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise ConfigError("--input must be a JSON object ({\"key\": value, ...})")
    return data


def step_printer(enabled: bool) -> Any:
    """Per-step progress on stderr (``step 3 ask 0.41 s``); stdout stays for results."""
    if not enabled:
        return None

    def show(buf: Any) -> None:
        err.print(f"[dim]step {buf.index} {buf.node} {buf.duration_s:.2f} s "
                  f"({len(buf.calls)} model calls)[/]", highlight=False)
    return show


def terminal_answers(given: list[str] | None) -> Any:
    """Answers to a paused session: the ``--answer`` values in order, then the terminal
    when there is one; with neither the session pauses and can be resumed."""
    queue = list(given or [])

    def ask(payload: Any) -> Any:
        if queue:
            return queue.pop(0)
        question = payload.get("question", payload) if isinstance(payload, dict) else payload
        if not sys.stdin.isatty():
            return None
        return typer.prompt(str(question))
    return ask


def run(agent: AgentArg, model: ModelOpt = None, sets: SetOpt = None,
        input: Annotated[str | None, typer.Option(
            "--input", help="The session's inputs: a JSON object or a .json/.toml file.")] = None,
        seed: Annotated[int, typer.Option(help="Session seed (0 … 2**63-1).", min=0)] = 0,
        answer: Annotated[list[str] | None, typer.Option(
            help="Answers to the agent's questions, in order (otherwise asked on the "
            "terminal, or the session pauses).")] = None,
        trust_remote_code: TrustOpt = False, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run one session of any agent and store it; prints its output and how to inspect it."""
    from tinmen.api import session_counts
    from tinmen.graphs.definition import parse_sets
    from tinmen.graphs.registry import load_agent
    from tinmen.graphs.session import SessionSpec, checkpointer_for, start_session
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import parse_bindings

    definition = load_agent(agent)
    spec = SessionSpec.create(definition, parse_input(input),
                              parse_bindings(model, definition.roles),
                              options=parse_sets(sets), seed=seed, ref=agent)
    quiet_transformers()
    store = open_store(db)
    pool = ModelPool(allow_remote_code=trust_remote_code)
    result = start_session(store, spec, pool=pool, answer=terminal_answers(answer),
                           checkpointer=checkpointer_for(store), on_step=step_printer(True))
    counts = session_counts(store, result.session_id)
    if as_json:
        return emit_json({"session_id": result.session_id, "status": result.status,
                          "output": result.output, "stored": counts, "db": store.url})
    out.print(f"session {result.session_id} ({definition.name}): {result.status}")
    if result.output:
        out.print(json.dumps(result.output, default=str)[:2000], highlight=False,
                  markup=False)
    out.print("stored: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    short = result.session_id[:12]
    nxt = f"tinmen resume {short}" if result.status == "interrupted" else \
        f"tinmen replay {short}"
    out.print(f"inspect: tinmen show {short}   next: {nxt}")


def agents(as_json: JsonOpt = False) -> None:
    """The registered agents: roles with their default models, options, description."""
    from tinmen.graphs.registry import AGENTS, load_agent

    rows = []
    for name in AGENTS.names():
        a = load_agent(name)
        rows.append({"name": a.name, "version": a.version, "roles": a.roles,
                     "options": a.option_fields(), "axes": sorted(a.axes),
                     "report": bool(a.report), "description": a.description})
    if as_json:
        return emit_json(rows)
    table = Table("agent", "roles (default model)", "options", "description")
    for r in rows:
        roles = ", ".join(f"{k}={v or '—'}" for k, v in r["roles"].items())
        table.add_row(r["name"], roles, ", ".join(r["options"]) or "—", r["description"])
    out.print(table)


@study_app.command("run")
def study_run(agent: AgentArg,
              grid: Annotated[Path, typer.Option(
                  "--grid", help="A TOML grid: reps, seed, [inputs], [options], [axes] "
                  "(option values crossed), [models] (role -> specs crossed), "
                  "[[conditions]]. See docs/studies.md.")],
              model: ModelOpt = None,
              workers: Annotated[int, typer.Option(help="Sessions in parallel.", min=1,
                                                   max=256)] = 1,
              executor: ExecutorOpt = "threads",
              resume: Annotated[int | None, typer.Option(
                  help="Finish an interrupted study with this id (same agent and grid).",
                  min=1)] = None,
              trust_remote_code: TrustOpt = False,
              db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Run every (condition, rep) of a grid over any agent; resumable by study id."""
    from tinmen.graphs.grid import Grid, plan_from_grid
    from tinmen.graphs.registry import load_agent
    from tinmen.graphs.study import run_study
    from tinmen.models.pool import ModelPool

    plan = plan_from_grid(load_agent(agent), agent, Grid.from_file(grid), model)
    plan.validate()
    quiet_transformers()
    store = open_store(db, create=resume is None)  # a resume needs the study's store
    outcome = run_study(store, plan, pool=ModelPool(allow_remote_code=trust_remote_code),
                        workers=workers, study_id=resume,
                        executor=executor, progress=True)
    if as_json:
        return emit_json({"study_id": outcome.study_id, "ran": outcome.ran,
                          "skipped": outcome.skipped, "failed": outcome.failed})
    out.print(f"study {outcome.study_id}: {outcome.ran} sessions run, {outcome.skipped} "
              f"already done. Report: tinmen report {outcome.study_id}")


def studies(db: DbOpt = None, limit: Annotated[int, typer.Option(min=1)] = 50,
            as_json: JsonOpt = False) -> None:
    """Stored studies, newest first, with their progress."""
    from tinmen.api import list_studies

    rows = list_studies(open_store(db, create=False), limit=limit)
    if as_json:
        return emit_json(rows)
    table = Table("id", "name", "agent", "status", "conditions", "sessions", "created")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["graph"], r["status"], str(r["conditions"]),
                      str(r["sessions"]), r["created"])
    out.print(table)


def report(study: Annotated[int, typer.Argument(metavar="STUDY", help="Study id.")],
           out_dir: Annotated[Path, typer.Option("--out", help="Folder for the table and "
                                                 "plots.")] = Path("."),
           generic: Annotated[bool, typer.Option(
               "--generic", help="The generic per-condition metrics report even when the "
               "agent has its own.")] = False,
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """A study's report: the agent's own, else per-condition metrics with 95% intervals."""
    from tinmen.graphs.report import report as make_report

    result = make_report(open_store(db, create=False), study, out_dir, generic=generic)
    if as_json:
        return emit_json(result)
    table_path = result.get("table")
    if table_path and Path(table_path).is_file():
        out.print(Path(table_path).read_text(), markup=False, highlight=False)
    for key in ("table", "plot"):
        if result.get(key):
            out.print(f"{key}: {result[key]}")
    for png in result.get("plots", []):
        out.print(f"plot: {png}")


def export(study: Annotated[int, typer.Argument(metavar="STUDY", help="Study id.")],
           out_dir: Annotated[Path, typer.Argument(metavar="DIR", help="Output folder.")],
           fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Write a study's sessions, steps, beliefs, decisions, model calls, metrics and human
    inputs as one file each (the analysis API's DataFrames)."""
    from tinmen.storage.analysis import export_study

    written = export_study(open_store(db, create=False), study, out_dir, fmt)
    if as_json:
        return emit_json({k: str(v) for k, v in written.items()})
    for name, path in written.items():
        out.print(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(agents)
    app.command()(studies)
    app.command()(report)
    app.command()(export)
    app.add_typer(study_app, name="study")
    from tinmen.cli_view import view  # fastapi itself is imported only when `view` runs

    app.command()(view)
