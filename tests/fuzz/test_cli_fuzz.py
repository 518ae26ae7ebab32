"""A bounded fuzz of the whole CLI, and property tests of the surfaces it parses.

Every malformed command line of :mod:`cli_fuzz_inputs` (≥ 2,000, every command and
sub-command) runs in-process through ``tinmen.cli.main`` against a fresh copy of one real
SQLite store (sessions of scripted models, a study, a session paused at a prompt). For each
one: the exit code is one the house rules allow (a user error is 2; ``db check`` and
``replay`` may say 1), no traceback reaches stdout or stderr, no "internal error", and a
command that fails leaves the store — and the working folder — as they were.

"As they were", exactly: the store's main file and its -wal are first compared byte for
byte with the pristine copy (reads leave both alone, so this almost always settles it);
where the bytes differ (a reader's checkpoint, a WAL reset), every row of every table —
tinmen's, Alembic's and LangGraph's checkpoints — is dumped with ``sqlite3``'s
``iterdump`` and compared with the pristine dump.

Commands that would do long work (load a real model, run a study past a few trials, run
the judge's coverage simulation) are stopped at that point by a guard: for them only the
argument validation is fuzzed, and a case that *must* be refused yet got that far fails.
"""

from __future__ import annotations

import faulthandler
import hashlib
import io
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import cli_fuzz_inputs as gen
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class LongWork(BaseException):
    """Raised by the guard where a command would start long work (not an Exception, so
    main() lets it through)."""


# --------------------------------------------------------------------------- the world
def _prepare(folder: Path) -> gen.Context:
    """The working folder: input files, two agent files, and a store holding two example
    sessions, a study of four sessions and one session paused at a prompt."""
    from tinmen.graphs.grid import Grid, plan_from_grid
    from tinmen.graphs.registry import load_agent
    from tinmen.graphs.session import checkpointer_for, run_session
    from tinmen.graphs.study import run_study
    from tinmen.models.pool import ModelPool
    from tinmen.models.registry import resolve_spec
    from tinmen.storage import Store

    gen.write_files(folder)
    shutil.copy(EXAMPLES / "minimal_agent.py", folder / "my_agent.py")
    (folder / "asker.py").write_text(gen.ASKER)
    path = folder / "pristine.db"
    store = Store.open(f"sqlite:///{path}")
    echo = {"agent": resolve_spec("scripted:echo")}
    pool = ModelPool()
    done = [run_session(store, "example", {"request": r}, echo, pool=pool,
                        checkpointer=checkpointer_for(store)).session_id
            for r in ("egg", "tea")]
    paused = run_session(store, "asker.py:AGENT", {}, echo, pool=pool,
                         checkpointer=checkpointer_for(store), answer=lambda p: None)
    plan = plan_from_grid(load_agent("example"), "example", Grid.from_file(
        folder / "good.toml"), ["agent=scripted:echo"])
    study = run_study(store, plan, pool=pool, progress=False).study_id
    store.close()
    _settle(path)
    # a store written by a newer tinmen, and a damaged one
    shutil.copy(path, folder / "future.db")
    with sqlite3.connect(folder / "future.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    _settle(folder / "future.db")
    data = path.read_bytes()
    (folder / "corrupt.db").write_bytes(data[:4096] + b"\x00garbage" * 512 + data[8192:])
    return gen.Context(session=done[0], paused=paused.session_id, study=study)


def _settle(path: Path) -> None:
    """Everything in the main file, no -wal left: the byte comparison's baseline."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _dump(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode("utf-8", "surrogatepass")
                              ).hexdigest()
    finally:
        conn.close()


def _bytes_of(path: Path) -> bytes:
    wal = Path(f"{path}-wal")
    main = path.read_bytes() if path.exists() else b""
    return main + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tinmen.cli import quiet_transformers

    quiet_transformers()  # its imports (transformers, diffusers) once, before the clock
    folder = tmp_path_factory.mktemp("fuzz")
    old = os.getcwd()
    os.chdir(folder)
    try:
        ctx = _prepare(folder)
    finally:
        os.chdir(old)
    pristine = folder / "pristine.db"
    damaged = {name: (folder / name).read_bytes() for name in DAMAGED}
    return World((folder, ctx, pristine.read_bytes(), _dump(pristine), damaged))


class World(tuple):
    """(folder, context, pristine bytes, pristine dump, damaged stores' bytes)."""

    def __repr__(self) -> str:  # hypothesis prints fixtures with a failing example
        return f"World({self[0]})"


@pytest.fixture
def guarded(monkeypatch, world):
    """Long work stops with LongWork; the terminal is a closed stdin."""
    from tinmen.graphs import study
    from tinmen.models.pool import ModelPool

    real_checkout, real_trial = ModelPool._checkout, study._trial
    trials = {"n": 0}

    def checkout(self, spec):
        if spec.backend != "scripted":
            raise LongWork(f"would load {spec.backend}:{spec.source}")
        return real_checkout(self, spec)

    def trial(store, plan, *args, **kwargs):
        if plan.graph.name != "example":  # the other agents' sessions train or load models
            raise LongWork(f"a session of {plan.graph.name}")
        trials["n"] += 1
        if trials["n"] > 4:
            raise LongWork("a study past four trials")
        return real_trial(store, plan, *args, **kwargs)

    def coverage(*args, **kwargs):
        raise LongWork("the judge's coverage simulation, or a server")

    from tinmen.agents.t2i import scenes

    real_synthetic = scenes.synthetic_items

    def synthetic(n, *args, **kwargs):
        if n > 10_000:  # `t2i eval --synthetic 1000000000000` builds them all in memory
            raise LongWork(f"{n} synthetic items")
        return real_synthetic(n, *args, **kwargs)

    monkeypatch.setattr(scenes, "synthetic_items", synthetic)
    monkeypatch.setattr(ModelPool, "_checkout", checkout)
    monkeypatch.setattr(study, "_trial", trial)
    monkeypatch.setattr("tinmen.agents.judge.synthetic.replicate", coverage)
    try:  # `tinmen view` serves until stopped
        import tinmen.viewer.app as viewer

        monkeypatch.setattr(viewer, "serve", lambda *a, **k: coverage() or None)
    except ImportError:
        pass
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.chdir(world[0])
    return trials


# --------------------------------------------------------------------------- the fuzz
SAYS_ONE = {("db", "check"), ("replay",)}  # a failed check / a divergent replay exit 1
IGNORED_IN_CWD = {"dbs", "tinmen_out", "rep", "exp", "."}


DAMAGED = ("future.db", "corrupt.db", "empty.db", "notadb.db")  # stores a case may name


def _cwd_names(folder: Path) -> set[str]:
    """The working folder's entries, less SQLite's -wal / -shm side files (a connection
    an earlier case left open keeps them; the stores' own bytes are compared instead)."""
    names = {p.name for p in folder.iterdir()} - IGNORED_IN_CWD
    return {n for n in names if not n.endswith(("-wal", "-shm"))}


def _damaged_changed(folder: Path, case: gen.Case, originals: dict[str, bytes]) -> list[str]:
    changed = []
    for name in DAMAGED:
        if any(name in a for a in case.args):
            wal = folder / f"{name}-wal"
            if (folder / name).read_bytes() != originals[name] or (
                    wal.exists() and wal.stat().st_size):
                changed.append(name)
    return changed


def _problems(case: gen.Case, rc: int | None, out: str, err: str, reached: str | None,
              store_changed: bool, cwd_changed: set[str]) -> list[str]:
    found = []
    text = out + err
    if "Traceback" in text:
        found.append("a traceback reached the user")
    if "internal error" in err:
        found.append("internal error: " + err.strip().splitlines()[-1][:300])
    if reached is not None:
        if case.expect == "error":
            found.append(f"a bad value was accepted ({reached})")
        return found
    if rc not in (0, 1, 2, 130):
        found.append(f"exit {rc}")
    one_ok = tuple(case.args[:2]) in SAYS_ONE or tuple(case.args[:1]) in SAYS_ONE
    if case.expect == "error" and rc != 2 and not (one_ok and rc == 1):
        found.append(f"exit {rc} for a user error (want 2): {err.strip()[-200:]!r}")
    if rc == 2:
        lines = err.strip().splitlines()
        start = next((i for i, line in enumerate(lines) if "error" in line), 0)
        if not lines or len(lines) - start > 2:
            found.append(f"the error is not one or two lines: {err.strip()[-300:]!r}")
    if rc != 0 and store_changed:
        found.append("a failed command changed the store")
    if rc != 0 and cwd_changed:
        found.append(f"a failed command wrote {sorted(cwd_changed)} in the working folder")
    return found


def _run_case(case: gen.Case, n: int, world, capsys, trials) -> tuple[int | None, list[str]]:
    from tinmen.cli import main

    folder, _, pristine_bytes, pristine_dump, _ = world
    db = folder / "dbs" / f"c{n}.db"
    db.write_bytes(pristine_bytes)
    url = f"sqlite:///{db}"
    before = _cwd_names(folder)
    saved = {k: os.environ.get(k) for k, _ in case.env} | {"TINMEN_DB": os.environ.get(
        "TINMEN_DB")}
    os.environ["TINMEN_DB"] = url
    os.environ.update(dict(case.env))
    trials["n"] = 0
    rc, reached = None, None
    try:
        rc = main(case.argv(url))
    except LongWork as exc:
        reached = str(exc)
    except BaseException as exc:  # noqa: BLE001 - main must never raise
        captured = capsys.readouterr()
        return None, [f"main raised {type(exc).__name__}: {exc}"[:300] + captured.err[-200:]]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    captured = capsys.readouterr()
    changed = False
    if rc not in (0, None) and _bytes_of(db) != pristine_bytes:
        changed = _dump(db) != pristine_dump
    cwd_changed = _cwd_names(folder) - before
    if rc not in (0, None):
        cwd_changed |= set(_damaged_changed(folder, case, world[4]))
    if rc == 0:  # a command that worked may write there: keep the next case's view clean
        for name in cwd_changed:
            target = folder / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    for name in _damaged_changed(folder, case, world[4]):  # (by a command that worked)
        # a new file, not new bytes in the old one: a connection an earlier case left open
        # holds SQLite's locks on the old one
        fresh = folder / "dbs" / f"fresh{n}-{name}"
        fresh.write_bytes(world[4][name])
        for suffix in ("-wal", "-shm"):
            side = Path(f"{folder / name}{suffix}")
            if side.exists():
                os.replace(side, folder / "dbs" / f"old{n}-{name}{suffix}")
        os.replace(fresh, folder / name)
    return rc, _problems(case, rc, captured.out, captured.err, reached, changed, cwd_changed)


def test_every_command_refuses_malformed_input_cleanly(world, guarded, capsys):
    from tinmen.cli import app, register_agent_commands

    register_agent_commands()
    folder, ctx, *_ = world
    (folder / "dbs").mkdir(exist_ok=True)
    all_cases = list(gen.cases(app, ctx, seed=0))
    commands = set(gen.leaf_commands(app))
    failures: list[tuple[gen.Case, list[str]]] = []
    slow: list[tuple[float, gen.Case]] = []
    codes: dict[int | None, int] = {}
    started = time.perf_counter()
    trace = os.environ.get("TINMEN_FUZZ_TRACE")  # a file: each case before it runs
    for n, case in enumerate(all_cases):
        if trace:
            with open(trace, "a") as fh:
                fh.write(f"{n} {[a[:50] for a in case.args]} {dict(case.env)}\n")
        t0 = time.perf_counter()
        faulthandler.dump_traceback_later(60, file=sys.__stderr__)  # where a case hangs
        try:
            rc, problems = _run_case(case, n, world, capsys, guarded)
        finally:
            faulthandler.cancel_dump_traceback_later()
        slow.append((time.perf_counter() - t0, case))
        if trace:
            with open(trace, "a") as fh:
                fh.write(f"   {slow[-1][0]:.3f} s rc={rc}\n")
        codes[rc] = codes.get(rc, 0) + 1
        if problems:
            failures.append((case, problems))
        if n % 200 == 199:
            import gc

            gc.collect()  # close the SQLite files earlier cases left open
            for old in (folder / "dbs").iterdir():
                old.unlink()
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nCLI fuzz: {len(all_cases)} malformed inputs over {len(commands)} commands "
              f"in {elapsed:.1f} s; exit codes {dict(sorted(codes.items(), key=str))}; "
              f"{len(failures)} failures")
        for seconds, case in sorted(slow, key=lambda s: -s[0])[:3]:
            print(f"  slowest: {seconds:.2f} s {list(case.args)[:6]}")
        for case, problems in failures[:300]:
            print(f"  FAIL {[a[:60] for a in case.args]} env={dict(case.env)} "
                  f"({case.note}): {'; '.join(problems)}")
    assert len(all_cases) >= 2000
    assert not failures, f"{len(failures)} of {len(all_cases)} inputs broke a house rule"


# --------------------------------------------------------------------------- properties
PROPS = settings(max_examples=60, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(
    ["\udcff", "\ud800", "%", "_", "=", ":", "\x00"]), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) |
    st.floats(allow_nan=True, allow_infinity=True) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)


@PROPS
@given(st.dictionaries(st.sampled_from(["name", "backend", "source", "dtype", "device",
                                        "max_batch_size", "zz", "revision"]) | text,
                       json_values, max_size=6))
def test_a_spec_is_a_spec_or_a_config_error(data):
    from tinmen.models.spec import ModelSpec

    from tinmen.errors import ConfigError

    try:
        ModelSpec.validated(data)
    except ConfigError as exc:
        assert str(exc).count("\n") == 0 or "field" in str(exc)


@PROPS
@given(text)
def test_resolve_spec_names_a_model_or_refuses(spec_text):
    from tinmen.models.registry import resolve_spec

    from tinmen.errors import TinmenError

    try:
        resolve_spec(spec_text)
    except TinmenError:
        pass


def _agent_options():
    from tinmen.graphs.registry import AGENTS, load_agent

    return {name: load_agent(name) for name in AGENTS.names()}


@PROPS
@given(st.sampled_from(["example", "t2i", "shopper", "shopper-market", "w2s", "judge"]),
       st.lists(st.tuples(st.sampled_from(["max_new_tokens", "max_turns", "policy", "user",
                                           "temperature", "ask_above", "images", "nope"]) |
                          text, text | json_values.map(json.dumps)), max_size=4))
def test_set_values_are_options_or_one_line_errors(agent, pairs):
    from tinmen.graphs.definition import parse_sets

    from tinmen.errors import ConfigError

    definition = _agent_options()[agent]
    try:
        options = definition.resolve_options(parse_sets([f"{k}={v}" for k, v in pairs]))
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    json.dumps(options, allow_nan=False)  # what a session stores must be finite JSON


@PROPS
@given(st.lists(json_values.map(json.dumps) | text | st.sampled_from(
    ['{"id": "a", "short": "s", "long": "l"}', '{"id": "a", "short": "\udcff", "long": "l"}',
     '{"id": 1}', "[]", "{", "{" * 3000]), min_size=0, max_size=4))
def test_items_files_load_or_refuse(tmp_path_factory, lines):
    from tinmen.agents.t2i.scenes import load_items

    from tinmen.errors import ConfigError

    path = tmp_path_factory.mktemp("items") / "items.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    try:
        load_items(path)
    except ConfigError:
        pass


@PROPS
@given(text | st.sampled_from(["", ":memory:", "sqlite://", "sqlite:///", "x.db", "%.db",
                               "nosuch://", "postgresql+nosuch://a@b/c", "::", "sqlite:///\x00.db"]))
def test_db_urls_open_or_refuse_in_one_line(tmp_path_factory, url):
    from tinmen.storage import Store

    from tinmen.errors import TinmenError

    folder = tmp_path_factory.mktemp("urls")
    old = os.getcwd()
    os.chdir(folder)
    try:
        Store.open(url).close()
    except TinmenError as exc:
        assert "\n" not in str(exc).strip()
    finally:
        os.chdir(old)


@PROPS
@given(st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=40) |
       st.sampled_from(["%", "_", "%%", "a_", "' OR '1'='1", "0" * 40]))
def test_session_ids_are_found_or_not_found(world, session_id):
    from tinmen.storage import Store

    from tinmen.api import show_session
    from tinmen.errors import TinmenError

    folder, ctx, *_ = world
    store = Store.open(f"sqlite:///{folder / 'pristine.db'}", migrate=False)
    try:
        shown = show_session(store, session_id)
        assert shown["id"].startswith(session_id) and "%" not in session_id \
            and "_" not in session_id
    except TinmenError as exc:
        assert "\n" not in str(exc)
    finally:
        store.close()


@PROPS
@given(st.lists(text | st.sampled_from(["set circle.color=red", "drop circle", "add square",
                                        "set .=", "set circle.=x", "add circle.color=",
                                        "drop", "set circle.nope=1", "set circle.color=" +
                                        "x" * 500]), max_size=5))
def test_belief_edits_apply_or_raise_belief_edit_error(edits):
    from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity
    from tinmen.agents.t2i.edits import apply_edit

    from tinmen.errors import BeliefEditError

    belief = BeliefGraph(prompt="a circle", entities=(Entity(name="circle", attributes=(
        Attribute(name="color", candidates={"red": 0.5, "blue": 0.5}),)),))
    for edit in edits:
        try:
            belief, _ = apply_edit(belief, edit)
        except BeliefEditError:
            pass
    json.dumps(BeliefGraph.from_json(belief.to_json()).to_json(), default=str)


@PROPS
@given(st.lists(text | json_values.map(json.dumps), min_size=1, max_size=3))
def test_typed_answers_are_stored_or_refused(world, tmp_path_factory, answers):
    """Any answer typed at a prompt completes the paused session (and replays) or is one
    user error that leaves it paused."""
    from tinmen.graphs.session import resume_session
    from tinmen.models.pool import ModelPool
    from tinmen.storage import Store

    from tinmen.errors import TinmenError

    folder, ctx, pristine_bytes, pristine_dump, _ = world
    db = tmp_path_factory.mktemp("answers") / "a.db"
    db.write_bytes(pristine_bytes)
    store = Store.open(f"sqlite:///{db}", migrate=False)
    queue = list(answers)
    old = os.getcwd()
    os.chdir(folder)
    try:
        done = resume_session(store, ctx.paused, lambda p: queue.pop(0) if queue else None,
                              pool=ModelPool())
        assert done.status == "completed"
    except TinmenError as exc:
        assert "\n" not in str(exc)
        store.close()
        assert _dump(db) == pristine_dump
        return
    finally:
        os.chdir(old)
    os.chdir(folder)
    try:
        from tinmen.graphs.replay import replay_session

        assert replay_session(store, done.session_id).identical
    finally:
        os.chdir(old)
        store.close()
