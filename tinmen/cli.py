"""The ``tinmen`` command: parse, call one library function, render.

User errors (``TinmenError``) print one line to stderr and exit 2; ``--json`` on read
commands prints machine-readable output instead of tables.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tinmen.errors import ConfigError, StoreError, TinmenError
from tinmen.plugins import Registry

app = typer.Typer(help="tinmen: LangGraph agents on shared HuggingFace model pools, every "
                  "belief and decision in a SQL store, exact replay.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The store: migrations and status.", no_args_is_help=True)
models_app = typer.Typer(help="Model specs, the packaged defaults and the shapes-world models.",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)



def _given_db(value: str | None) -> str | None:
    """``--db ""`` is a mistake (an unset variable in a script), not ./tinmen.db."""
    if value is not None and not value.strip():
        raise typer.BadParameter("is empty: pass a SQLAlchemy URL or a path ending in .db "
                                 "(or leave --db out for TINMEN_DB / ./tinmen.db)")
    return value


DbOpt = Annotated[str | None, typer.Option(
    "--db", callback=_given_db,
    help="The store: a SQLAlchemy URL (sqlite:///runs.db, postgresql+psycopg://…) or a "
    "path ending in .db (env TINMEN_DB; default sqlite:///tinmen.db in the current folder).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="threads: sessions in threads of this process, sharing one model pool; "
    "ray: each session a Ray task (a local Ray instance with --workers CPUs, or the cluster "
    "in RAY_ADDRESS; needs pip install 'tinmen[ray]').")]
TrustOpt = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Allow model folders to run their own Python code (a spec's "
    "trust_remote_code, custom pipelines, pickled weights) for this run only; never taken "
    "from a spec file or a stored session without this flag.")]
ModelOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="ROLE=SPEC, repeatable: SPEC is a registered name (smollm2), "
    "BACKEND:SOURCE (scripted:t2i, transformers-lm:/path) or a .json/.toml spec file.")]


def open_store(db: str | None, *, create: bool = True) -> Any:
    """The store at ``db``; ``create=False`` (commands that only read or extend what is
    there) refuses a SQLite path with no store rather than leave an empty one behind."""
    from tinmen.storage import Store

    if not create:
        from tinmen.storage.check import open_existing
        from tinmen.storage.db import current_revision, store_error

        engine = open_existing(db)
        try:
            revision = current_revision(engine)
        except Exception as exc:  # noqa: BLE001 - a driver error: one line that says what
            raise store_error(exc, engine.url.render_as_string(hide_password=True)) from exc
        finally:
            engine.dispose()
        if revision is None:
            raise StoreError(f"{engine.url.render_as_string(hide_password=True)} holds no "
                             "tinmen store; pass the --db of an existing store")
    return Store.open(db)


def quiet_transformers() -> None:
    """No per-file progress bars or advisory warnings from transformers (or diffusers) in CLI
    output."""
    try:  # nothing to quiet where transformers is missing (it fails where a model loads)
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:  # diffusers prints its own "Loading pipeline components" bar
        from diffusers.utils import logging as diffusers_logging
    except ImportError:
        return
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- sessions
@app.command()
def sessions(db: DbOpt = None, study: Annotated[int | None, typer.Option(
                 help="Only this study's sessions.")] = None,
             graph: Annotated[str | None, typer.Option(help="Only this graph.")] = None,
             agent: Annotated[str | None, typer.Option(help="Only sessions with this "
                                                          "agent.")] = None,
             limit: int = 50, as_json: JsonOpt = False) -> None:
    """List stored sessions, newest first."""
    from tinmen.api import list_sessions

    rows = list_sessions(open_store(db, create=False), study=study, graph=graph, agent=agent,
                         limit=limit)
    if as_json:
        return emit_json(rows)
    table = Table("id", "graph", "mode", "status", "study", "steps", "parent", "created")
    for r in rows:
        table.add_row(r["id"][:12], r["graph"], r["mode"], r["status"], str(r["study"] or ""),
                      str(r["steps"]), (r["parent"] or "")[:12], r["created"])
    out.print(table)


@app.command()
def show(session: Annotated[str, typer.Argument(help="Session id (or a unique prefix).")],
         db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Steps, beliefs, decisions and model calls of one session, in order."""
    from tinmen.api import show_session
    from tinmen.storage.check import quick_check_warning

    store = open_store(db, create=False)
    if warning := quick_check_warning(store):  # a damaged file: say so before showing it
        err.print(warning, highlight=False, soft_wrap=True)
    data = show_session(store, session)
    if as_json:
        return emit_json(data)
    out.print(f"[bold]session {data['id']}[/] graph={data['graph']} mode={data['mode']} "
              f"status={data['status']} seed={data['seed']} models={data['models']}")
    for step in data["steps"]:
        out.print(f"[cyan]step {step['index']}: {step['node']}[/]")
        for c in step["calls"]:
            out.print(f"  call {c['role']}#{c['index']} {c['op']} {c['model']} "
                      f"nll={c['nll']} → {str(c['output'])[:90]!r}")
        for b in step["beliefs"]:
            ent = f" H={b['entropy']:.3f}" if b["entropy"] is not None else ""
            out.print(f"  belief {b['subject']} = {str(b['value'])[:80]}{ent} ({b['source']})")
        for d in step["decisions"]:
            out.print(f"  decision {d['kind']} → {d['chosen']} (uncertainty "
                      f"{d['uncertainty']}) {d['rationale'] or ''}")
    if data["output"]:
        out.print(f"[bold]output[/] {json.dumps(data['output'], default=str)[:400]}")


@app.command()
def replay(session: Annotated[str, typer.Argument(help="Session id to replay exactly.")],
           db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Re-run a session from its record (no model weights) and compare beliefs/decisions."""
    from tinmen.graphs.replay import replay_session
    from tinmen.storage.check import quick_check_warning

    store = open_store(db, create=False)
    if warning := quick_check_warning(store):  # a damaged file: say so before replaying it
        err.print(warning, highlight=False, soft_wrap=True)
    report = replay_session(store, session)
    if as_json:
        emit_json(report.to_json())
    elif report.identical:
        out.print(f"replay {report.replay_id} of {report.original_id}: identical beliefs and "
                  f"decisions ({report.calls_served} model calls served from the record)")
    elif report.divergence:
        out.print(f"[red]diverged[/]: {report.divergence['message']}")
    else:
        out.print("[red]replay differs:[/]\n  " + "\n  ".join(report.differences))
    if not report.identical:
        raise typer.Exit(1)


@app.command()
def fork(session: Annotated[str, typer.Argument(help="Session id to fork.")],
         at_step: Annotated[int, typer.Option("--at-step", min=0, help="Replay steps before "
                                              "this index, then run live.")],
         model: ModelOpt = None, db: DbOpt = None,
         seed: Annotated[int | None, typer.Option(help="New seed for the live part.",
                                                  min=0)] = None,
         sets: Annotated[list[str] | None, typer.Option(
             "--set", help="KEY=VALUE: another value for one of the agent's options.")] = None,
         trust_remote_code: TrustOpt = False, as_json: JsonOpt = False) -> None:
    """Replay a session up to a step, then continue live with other models, seed or
    options; prints how the fork's beliefs and decisions differ."""
    from tinmen.cli_run import step_printer
    from tinmen.graphs.definition import parse_sets
    from tinmen.graphs.replay import diff_sessions, fork_session
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import resolve_spec

    bindings = {}
    for item in model or []:
        role, sep, spec = item.partition("=")
        if not sep or not role.strip():
            raise TinmenError(f"--model expects ROLE=SPEC, got '{item}'")
        bindings[role.strip()] = resolve_spec(spec)
    store = open_store(db, create=False)
    quiet_transformers()
    pool = ModelPool(allow_remote_code=trust_remote_code)
    result = fork_session(store, session, at_step, bindings, pool=pool, seed=seed,
                          options=parse_sets(sets), on_step=step_printer(True))
    diffs = diff_sessions(store, session, result.session_id)
    if as_json:
        return emit_json({"fork": result.session_id, "parent": session, "differences": diffs})
    out.print(f"fork {result.session_id} of {session} at step {at_step}")
    for line in diffs or ["(no differences in beliefs or decisions)"]:
        out.print(f"  {line}", markup=False)


@app.command()
def resume(session: Annotated[str, typer.Argument(help="An interrupted session's id.")],
           db: DbOpt = None,
           answer: Annotated[list[str] | None, typer.Option(
               help="Answers to give, in order (otherwise asked on the terminal).")] = None,
           trust_remote_code: TrustOpt = False) -> None:
    """Continue a session that paused for human input (calls before the pause are not re-run)."""
    from tinmen.graphs.session import resume_session
    from tinmen.models.pool import ModelPool

    given = list(answer or [])

    def ask(payload: Any) -> Any:
        if given:
            return given.pop(0)
        question = payload.get("question", payload) if isinstance(payload, dict) else payload
        if not sys.stdin.isatty():
            return None
        return typer.prompt(str(question))

    result = resume_session(open_store(db, create=False), session, ask,
                            pool=ModelPool(allow_remote_code=trust_remote_code))
    out.print(f"session {result.session_id}: {result.status}")


@app.command()
def diff(a: str, b: str, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """How two sessions' beliefs and decisions differ."""
    from tinmen.graphs.replay import diff_sessions

    lines = diff_sessions(open_store(db, create=False), a, b, limit=200)
    if as_json:
        return emit_json(lines)
    for line in lines or ["(identical beliefs and decisions)"]:
        out.print(line)


@app.command()
def example(request: Annotated[str, typer.Option(help="The request the agent handles.")] =
            "How long should I boil an egg for a soft yolk?",
            model: ModelOpt = None, db: DbOpt = None, seed: int = 0,
            as_json: JsonOpt = False) -> None:
    """Run the small example graph (classify → decide → write) on the default LLM."""
    from tinmen.api import session_counts
    from tinmen.graphs.example import AGENT
    from tinmen.graphs.session import checkpointer_for, run_session
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import parse_bindings

    bindings = parse_bindings(model, AGENT.roles)
    store = open_store(db)
    result = run_session(store, AGENT, {"request": request}, bindings, pool=ModelPool(),
                         seed=seed, checkpointer=checkpointer_for(store))
    counts = session_counts(store, result.session_id)
    if as_json:
        return emit_json({"session_id": result.session_id, "output": result.output,
                          "stored": counts, "db": store.url})
    out.print(f"topic: {result.output['topic']}  action: {result.output['action']}")
    out.print(f"reply: {result.output['reply']}")
    out.print(f"stored in {store.url}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    out.print(f"inspect: tinmen show {result.session_id[:12]}   replay: tinmen replay "
              f"{result.session_id[:12]}")


@app.command()
def demo(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The main job on the embedded defaults (SQLite file here, packaged models, CPU)."""
    try:
        from tinmen.cli_t2i import run_demo
    except ModuleNotFoundError as exc:
        if exc.name != "tinmen.cli_t2i":
            raise
        out.print("[dim]running the example graph on the packaged SmolLM2 …[/]")
        example(db=db, as_json=as_json, model=None)
        return
    run_demo(db=db, as_json=as_json)


# --------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store to the newest schema."""
    from tinmen.storage.db import current_revision

    store = open_store(db)
    out.print(f"{store.url} is at schema revision {current_revision(store.engine)}")


@db_app.command("status")
def db_status(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Schema revision and row counts."""
    from sqlalchemy import func, select

    from tinmen.storage import orm
    from tinmen.storage.db import current_revision

    store = open_store(db, create=False)
    with store.unit_of_work() as uow:
        counts = {t.name: uow.session.scalar(select(func.count()).select_from(t))
                  for t in orm.Base.metadata.sorted_tables}
    data = {"url": store.url, "revision": current_revision(store.engine), "rows": counts}
    if as_json:
        return emit_json(data)
    out.print(data)


@db_app.command("check")
def db_check(db: DbOpt = None, as_json: JsonOpt = False,
             repair: Annotated[bool, typer.Option(
                 "--repair", help="Mark studies and sessions left 'running' by a process that "
                 "is gone as 'abandoned'. Nothing else changes without --yes.")] = False,
             yes: Annotated[bool, typer.Option(
                 "--yes", help="With --repair, also clear references to missing steps and "
                 "rows (deleting rows that cannot exist without them).")] = False) -> None:
    """Check the store for damage: the file, foreign keys, step numbering, rows linked to
    missing steps, content hashes, and runs left 'running'. Exit 1 if problems remain."""
    from tinmen.storage.check import check_store

    if yes and not repair:
        raise ConfigError("--yes only confirms --repair; pass both to change the store")
    report = check_store(db, repair=repair, delete_rows=yes)
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.lines() or [f"{report.url}: no problems found"]:
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- models
@models_app.command("list")
def models_list(load: Annotated[list[str] | None, typer.Option(
                    "--load", help="Load these specs now and report their memory.")] = None,
                as_json: JsonOpt = False) -> None:
    """Registered specs and backends; with --load, load them and show bytes and device."""
    from tinmen.models.catalog import describe_models

    data = describe_models(load or [])
    if as_json:
        return emit_json(data)
    table = Table("name", "backend", "source", "available", "loaded", "device", "MB")
    for m in data["specs"]:
        table.add_row(m["name"], m["backend"], m["source"][:50], m["available"],
                      "yes" if m.get("bytes") else "", m.get("device", ""),
                      f"{m['bytes'] / 2**20:.1f}" if m.get("bytes") else "")
    out.print(table)
    out.print("backends: " + ", ".join(data["backends"]))


COMMANDS = Registry("command group", "tinmen.commands", {
    "t2i": "tinmen.cli_t2i:app",
    "shopper": "tinmen.cli_shopper:app",
    "w2s": "tinmen.cli_w2s:app",
    "judge": "tinmen.cli_judge:app",
})


def register_agent_commands() -> None:
    """The generic commands, then each agent's own command group (built-in ones and those
    installed packages declare in the ``tinmen.commands`` entry-point group)."""
    from tinmen.cli_run import register

    if getattr(app, "_tinmen_registered", False):
        return
    app._tinmen_registered = True  # type: ignore[attr-defined]
    register(app)
    for name in COMMANDS.names():
        app.add_typer(COMMANDS.load(name), name=name)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every user error is one line on stderr and exit 2, Ctrl-C exits 130,
    anything else is a bug: one line naming a report file (``--debug`` shows the
    traceback instead)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("TINMEN_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    if bad := next((a for a in args if not _is_utf8(a)), None):
        shown = bad.encode("utf-8", "backslashreplace").decode("utf-8")
        err.print(f"[red]error:[/] the argument '{escape(shown[:80])}' is not valid UTF-8; "
                  "pass text (and file names) in UTF-8", highlight=False, soft_wrap=True)
        return 2
    register_agent_commands()
    try:
        # without standalone mode click *returns* a typer.Exit's code instead of raising it
        code = _command()(args=args, standalone_mode=False, prog_name="tinmen")
    except TinmenError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return 130
    except OSError as exc:  # the environment (a path, permissions, a full disk), not a bug
        if debug:
            raise
        where = f" {exc.filename}"[:200] if exc.filename else ""
        err.print(f"[red]error:[/] {escape(exc.strerror or str(exc))}:{escape(where)}; check the "
                  "path, its permissions and the free space", highlight=False, soft_wrap=True)
        return 2
    except Exception as exc:
        if _is_click_error(exc):
            return _usage_error(exc)
        if debug:
            raise
        return _internal_error(exc, args)
    return code if isinstance(code, int) else 0


_BUILT: tuple[tuple[int, int], Any] | None = None
INT64 = 2**63  # what SQLite (and PostgreSQL's BIGINT) can hold: -2**63 … 2**63 - 1


def _command() -> Any:
    """The click command tree of ``app``: built once (typer rebuilds it on every call, about
    0.1 s), with every number parameter of every command bounded (:func:`_bounded`)."""
    global _BUILT
    key = (len(app.registered_commands), len(app.registered_groups))
    if _BUILT is None or _BUILT[0] != key:
        import functools

        import typer.main

        command = typer.main.get_command(app)
        for param in _all_params(command):
            param.process_value = functools.partial(_bounded, param, param.process_value)
        _BUILT = (key, command)
    return _BUILT[1]


def _all_params(command: Any) -> list[Any]:
    found = list(command.params)
    for sub in (getattr(command, "commands", None) or {}).values():
        found += _all_params(sub)
    return found


def _bounded(param: Any, process: Any, ctx: Any, value: Any) -> Any:
    """A number no store can hold or no computation can use is a usage error of the
    option that took it (an integer past 64 bits, nan, inf), for every command at once."""
    import math

    value = process(ctx, value)
    for item in value if isinstance(value, list | tuple) else (value,):
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and not -INT64 <= item < INT64:
            raise typer.BadParameter(f"{item} is too large (the most is 2**63 - 1)",
                                     ctx=ctx, param=param)
        if isinstance(item, float) and not math.isfinite(item):
            raise typer.BadParameter(f"{item} is not a finite number", ctx=ctx, param=param)
    return value


def _is_utf8(arg: str) -> bool:
    """Python hands over argv bytes that are not UTF-8 as lone surrogates; nothing made of
    them can be stored or shown."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_click_error(exc: BaseException) -> bool:
    """typer ships its own copy of click; its exceptions are not click's."""
    import click

    errors: tuple[type[BaseException], ...] = (click.ClickException,)
    try:
        from typer._click.exceptions import ClickException as TyperClickException
    except ImportError:  # an older typer uses click itself
        pass
    else:
        errors += (TyperClickException,)
    return isinstance(exc, errors)


def _usage_error(exc: Any) -> int:
    """Bad command-line usage: click's own message (which option, what it wants), exit 2."""
    code = int(getattr(exc, "exit_code", 2))
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    if message:  # (a bare group such as `tinmen db` has printed its help already)
        err.print(f"[red]error:[/] {escape(message)}{escape(hint)}", highlight=False,
                  soft_wrap=True)
    return 2 if code in (0, 1, 2) else code


def _internal_error(exc: BaseException, args: list[str]) -> int:
    """Not the user's fault: keep the traceback in a report file and say so in one line."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="tinmen-bug-", suffix=".txt")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"tinmen {' '.join(args)}\n\n")
        fh.write("".join(traceback.format_exception(exc)))
    err.print(f"[red]internal error[/] ({type(exc).__name__}: {escape(str(exc))[:200]}) — "
              f"this is a bug; the report is in {path} (rerun with --debug for the "
              f"traceback)", highlight=False, soft_wrap=True)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
