"""Malformed command lines for every `tinmen` command, derived from the typer app itself.

For each leaf command (after ``register_agent_commands()``) :func:`cases` starts from a
*base* command line that is valid (or as valid as the command can be without real models)
and mutates one thing at a time: each option gets values that are wrong for its type
(non-numbers, integers past SQLite's 64 bits, nan / inf, empty strings, invalid UTF-8 as
Python hands it over — lone surrogates — unknown options, a missing value), and the
options tinmen reads in its own way get their own bad values: ``--db`` URLs, ``ROLE=SPEC``,
``--set KEY=VALUE``, ``--input`` JSON, ``--grid`` files, session ids with SQL wildcards,
study ids. A case says whether it *must* be refused (``expect="error"``: a user error,
exit 2) or only has to keep the house rules (``expect="any"``).

``{DB}`` in an argument is replaced by the store under test; files named here are made by
:func:`write_files` in the fuzz run's working folder.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIG = "9223372036854775808"  # 2**63: one past SQLite's INTEGER
HUGE = "1000000000000"
SURROGATE = "bad\udcffutf8"  # what Python makes of invalid UTF-8 in argv
NESTED_DEPTH = 100_000


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    expect: str = "any"  # "error": must be refused (exit 2) | "any": house rules only
    env: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def argv(self, db: str) -> list[str]:
        return [a.replace("{DB}", db) for a in self.args]


@dataclass
class Context:
    """What the prepared store holds, for bases that must name real rows."""

    session: str  # a completed session id
    paused: str  # a session waiting at a human-input prompt
    study: int
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- files
def write_files(folder: Path) -> None:
    """Input files of every kind of damage, in ``folder`` (the run's working folder)."""
    deep = "[" * NESTED_DEPTH + "]" * NESTED_DEPTH
    deep_obj = '{"a":' * NESTED_DEPTH + "1" + "}" * NESTED_DEPTH
    files: dict[str, str | bytes] = {
        "good.toml": 'reps = 2\n[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = [4, 8]\n',
        "grid_big_reps.toml": 'reps = 1000000000000\n[inputs]\nrequest = "egg"\n',
        "grid_big_seed.toml": f'seed = {BIG}\n[inputs]\nrequest = "egg"\n',
        "grid_neg_seed.toml": 'seed = -1\n[inputs]\nrequest = "egg"\n',
        "grid_nan.toml": '[inputs]\nrequest = "egg"\n[options]\nmax_new_tokens = nan\n',
        "grid_inf_axis.toml": '[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = [inf]\n',
        "grid_bad_toml.toml": 'reps = \n[inputs\n',
        "grid_bad_utf8.toml": b'name = "\xff\xfe"\n',
        "grid_unknown.toml": 'nope = 1\n',
        "grid_empty_axis.toml": '[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = []\n',
        "grid_bad_role.toml": '[inputs]\nrequest = "egg"\n[models]\nagent = ["nosuch"]\n',
        "grid_dup.toml": '[[conditions]]\nkey = "a"\n[[conditions]]\nkey = "a"\n',
        "grid_bad_input.toml": '[inputs]\nrequest = ""\n',
        "grid_bad_option.toml": '[inputs]\nrequest = "egg"\n[options]\nnope = 1\n',
        "grid_wrong_types.toml": 'reps = "x"\nseed = [1]\naxes = 3\n',
        "grid_huge_axes.toml": '[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = ['
                               + ", ".join(str(i) for i in range(1, 400)) + ']\nask = ['
                               + ", ".join(str(i) for i in range(400)) + ']\n',
        "input_good.json": '{"request": "egg"}',
        "input_list.json": "[1, 2]",
        "input_bad.json": '{"request": ',
        "input_deep.json": deep_obj,
        "input_bad_utf8.json": b'{"request": "\xff"}',
        "input_bad.toml": "request = \n",
        "input_nan.json": '{"request": NaN}',
        "spec_deep.json": deep,
        "spec_deep_obj.json": deep_obj,
        "spec_bad.json": "{",
        "spec_list.json": "[]",
        "spec_unknown.json": '{"name": "x", "backend": "scripted", "source": "echo", "zz": 1}',
        "spec_bad_backend.json": '{"name": "x", "backend": "nosuch", "source": "echo"}',
        "spec_bad.toml": "backend = [\n",
        "spec_bad_utf8.json": b'{"name": "\xff"}',
        "spec_nan.json": '{"name": "x", "backend": "scripted", "source": "echo", '
                         '"max_batch_size": NaN}',
        "spec_big.json": '{"name": "x", "backend": "scripted", "source": "echo", '
                         f'"max_batch_size": {BIG}}}',
        "items_bad_utf8.jsonl": b'{"id": "a", "short": "\xff", "long": "x"}\n',
        "items_bad_json.jsonl": '{"id": "a", \n',
        "items_empty.jsonl": "\n\n",
        "items_dup.jsonl": '{"id": "a", "short": "a", "long": "a"}\n'
                           '{"id": "a", "short": "a", "long": "a"}\n',
        "items_deep.jsonl": deep_obj + "\n",
        "items_list.jsonl": "[1]\n",
        "items_wrong.jsonl": '{"id": 1, "short": null}\n',
        "notadb.db": "this is not a database\n" * 50,
        "empty.db": b"",
    }
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (folder / "adir.db").mkdir(exist_ok=True)
    (folder / "adir.toml").mkdir(exist_ok=True)
    (folder / "adir.json").mkdir(exist_ok=True)


# --------------------------------------------------------------------------- values
INT_BAD = [("x", "error"), ("", "error"), ("1.5", "error"), (BIG, "error"),
           ("-" + BIG[:-1] + "9", "error"), ("99999999999999999999999999", "error"),
           ("-1", "any"), ("0", "any"), (HUGE, "any"), ("0x10", "error"), ("nan", "error"),
           (SURROGATE, "error")]
FLOAT_BAD = [("nan", "error"), ("inf", "error"), ("-inf", "error"), ("1e309", "error"),
             ("x", "error"), ("", "error"), ("-1", "any"), (SURROGATE, "error")]
STR_BAD = [("", "any"), (SURROGATE, "any"), ("%", "any"), ("_", "any"), ("x" * 5000, "any"),
           ("-", "any")]
DB_BAD = [("", "error"), ("sqlite://", "any"), ("nosuch://x", "error"), ("::::", "error"),
          ("sqlite:////nonexistent/dir/x.db", "error"), ("/nonexistent/dir/x.db", "error"),
          ("adir.db", "error"), ("notadb.db", "error"), ("empty.db", "any"),
          ("future.db", "error"), ("corrupt.db", "any"), ("sqlite:///" + SURROGATE + ".db",
                                                           "any"),
          ("postgresql+nosuchdriver://u@h/db", "error"), ("%_.db", "any"),
          ("mysql://u@127.0.0.1:1/x", "error")]
MODEL_BAD = [("=", "error"), ("agent", "error"), ("agent=", "error"),
             ("=scripted:echo", "error"), ("agent=nosuch", "error"),
             ("agent=scripted:", "error"), ("nosuchrole=scripted:echo", "error"),
             ("agent=nosuch:x", "error"), (f"agent={SURROGATE}", "error"),
             ("agent=spec_deep.json", "error"), ("agent=spec_deep_obj.json", "error"),
             ("agent=spec_bad.json", "error"), ("agent=spec_list.json", "error"),
             ("agent=spec_unknown.json", "error"), ("agent=spec_bad_backend.json", "error"),
             ("agent=spec_bad.toml", "error"), ("agent=spec_bad_utf8.json", "error"),
             ("agent=spec_nan.json", "error"), ("agent=spec_big.json", "error"),
             ("agent=adir.json", "error"), ("agent=missing.json", "error"),
             ("agent=transformers-lm:/nonexistent/model", "any")]  # refused as it loads
SET_BAD = [("=", "error"), ("x", "error"), ("=1", "error"), ("nope=1", "error"),
           ("max_new_tokens=1e400", "error"), ("max_new_tokens=NaN", "error"),
           ("max_new_tokens=Infinity", "error"), (f"max_new_tokens={BIG}", "error"),
           ("max_new_tokens=-1", "error"), ("max_new_tokens=x", "error"),
           ("max_new_tokens=" + "[" * NESTED_DEPTH, "error"),
           ("max_new_tokens=" + "[" * 5000 + "]" * 5000, "error"),
           (f"max_new_tokens={SURROGATE}", "error"), ("ask_above=nan", "error"),
           ("max_turns=" + BIG, "error"), ("policy=nosuch", "error")]
INPUT_BAD = [("", "error"), ("[1, 2]", "error"), ('{"request": ', "error"), ("null", "error"),
             ('{"request": NaN}', "any"), ('{"request": ""}', "error"),
             ('{"request": "' + SURROGATE + '"}', "error"), ("input_list.json", "error"),
             ("input_bad.json", "error"), ("input_deep.json", "error"),
             ("input_bad_utf8.json", "error"), ("input_bad.toml", "error"),
             ("adir.json", "error"), ("missing.json", "error"), ("input_nan.json", "any"),
             ('{"a":' * NESTED_DEPTH, "error"), ('{"request": 1e400}', "error")]
GRID_BAD = [("missing.toml", "error"), ("adir.toml", "error"), ("grid_big_reps.toml", "error"),
            ("grid_big_seed.toml", "error"), ("grid_neg_seed.toml", "error"),
            ("grid_nan.toml", "error"), ("grid_inf_axis.toml", "error"),
            ("grid_bad_toml.toml", "error"), ("grid_bad_utf8.toml", "error"),
            ("grid_unknown.toml", "error"), ("grid_empty_axis.toml", "error"),
            ("grid_bad_role.toml", "error"), ("grid_dup.toml", "error"),
            ("grid_bad_input.toml", "error"), ("grid_bad_option.toml", "error"),
            ("grid_wrong_types.toml", "error"), ("grid_huge_axes.toml", "error"),
            ("", "error"), (SURROGATE + ".toml", "error"), ("notadb.db", "error")]
ITEMS_BAD = [("items_bad_utf8.jsonl", "error"), ("items_bad_json.jsonl", "error"),
             ("items_empty.jsonl", "error"), ("items_dup.jsonl", "error"),
             ("items_deep.jsonl", "error"), ("items_list.jsonl", "error"),
             ("items_wrong.jsonl", "error"), ("missing.jsonl", "error"), ("adir.json", "error"),
             ("", "error")]
SESSION_BAD = [("", "error"), ("%", "error"), ("_", "error"), ("a%", "error"),
               ("____________", "error"), ("%%%%%%", "error"), ("0" * 32, "error"),
               (SURROGATE, "error"), ("x" * 10_000, "error"), ("' OR 1=1 --", "error"),
               (BIG, "error"), ("-1", "error")]
STUDY_BAD = [("0", "any"), ("-1", "any"), (BIG, "error"), ("x", "error"), ("", "error"),
             ("99999", "error"), ("1.0", "any"), (SURROGATE, "error")]
ENV_BAD = [("TINMEN_BUSY_TIMEOUT_MS", "abc", "error"), ("TINMEN_BUSY_TIMEOUT_MS", "", "any"),
           ("TINMEN_BUSY_TIMEOUT_MS", "-5", "error"), ("TINMEN_BUSY_TIMEOUT_MS", BIG, "error"),
           ("TINMEN_BUSY_TIMEOUT_MS", "1e3", "error"), ("TINMEN_BUSY_TIMEOUT_MS", "nan", "error"),
           ("TINMEN_DB", "nosuch://x", "error"), ("TINMEN_DB", "adir.db", "error")]

# options whose values tinmen parses itself: their own bad values
SPECIAL = {"--db": DB_BAD, "--model": MODEL_BAD, "--set": SET_BAD, "--input": INPUT_BAD,
           "--grid": GRID_BAD, "--items": ITEMS_BAD, "--load": MODEL_BAD}


def bases(ctx: Context) -> dict[str, list[str]]:
    """A valid (or nearly valid) command line of each command, without its name."""
    sid, echo = ctx.session, ["-m", "agent=scripted:echo"]
    return {
        "sessions": ["--db", "{DB}"], "show": [sid[:12], "--db", "{DB}"],
        "replay": [sid, "--db", "{DB}"],
        "fork": [sid, "--at-step", "1", "--db", "{DB}"],
        "resume": [ctx.paused, "--db", "{DB}"], "diff": [sid, sid, "--db", "{DB}"],
        "example": ["--db", "{DB}", *echo], "demo": ["--db", "{DB}"],
        "run": ["example", "--input", '{"request": "egg"}', *echo, "--db", "{DB}"],
        "agents": [], "studies": ["--db", "{DB}"],
        "report": [str(ctx.study), "--out", "rep", "--db", "{DB}"],
        "export": [str(ctx.study), "exp", "--format", "csv", "--db", "{DB}"],
        "db upgrade": ["--db", "{DB}"], "db status": ["--db", "{DB}"],
        "db check": ["--db", "{DB}"], "models list": [],
        "study run": ["example", "--grid", "good.toml", *echo, "--resume", str(ctx.study),
                      "--db", "{DB}"],
        "judge run": ["--db", "{DB}"], "judge report": [str(ctx.study), "--db", "{DB}"],
        "judge rank": ["--study", str(ctx.study), "--db", "{DB}"], "judge coverage": [],
        "shopper study": ["--db", "{DB}"], "shopper report": [str(ctx.study), "--db", "{DB}"],
        "t2i run": ["--prompt", "a cat", "--db", "{DB}"], "t2i eval": ["--db", "{DB}"],
        "t2i demo": ["--db", "{DB}"], "w2s run": ["--db", "{DB}"],
        "w2s report": [str(ctx.study), "--db", "{DB}"], "view": ["--db", "{DB}"],
    }


def leaf_commands(app: Any) -> dict[str, Any]:
    """Every leaf command of the typer app: "db check" -> its click command."""
    import typer.main

    found: dict[str, Any] = {}

    def walk(cmd: Any, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            found[" ".join(path)] = cmd
            return
        for name, sub in subs.items():
            walk(sub, [*path, name])
    walk(typer.main.get_command(app), [])
    return found


def _annotation(param: Any) -> str:
    text = str(getattr(getattr(param, "type_descriptor", None), "annotation", ""))
    if "float" in text:
        return "float"
    if "int" in text and "bool" not in text:
        return "int"
    if "bool" in text:
        return "bool"
    return "str"


def _replace(base: list[str], opt: str, value: str) -> list[str]:
    """``base`` with option ``opt`` set to ``value`` (replacing its value there, if any)."""
    return [*_drop(base, opt), opt, value]


def _positional(base: list[str], params: list[Any]) -> list[int]:
    """Indexes in ``base`` of the positional arguments (those not after an option)."""
    idx, i = [], 0
    while i < len(base):
        if base[i].startswith("-"):
            i += 2
            continue
        idx.append(i)
        i += 1
    return idx


def cases(app: Any, ctx: Context, seed: int = 0) -> Iterator[Case]:
    """Every malformed command line (see the module docstring), in a seeded order within
    each command."""
    rng = random.Random(seed)
    all_bases = bases(ctx)
    commands = leaf_commands(app)
    missing = sorted(set(commands) - set(all_bases))
    assert not missing, f"no fuzz base for the new commands {missing}: add one in bases()"
    for name, cmd in commands.items():
        base, words = all_bases[name], name.split()
        yield from _command_cases(words, base, cmd, ctx, rng)


def _command_cases(words: list[str], base: list[str], cmd: Any, ctx: Context,
                   rng: random.Random) -> Iterator[Case]:
    def case(args: list[str], expect: str, note: str, env: tuple = ()) -> Case:
        return Case(tuple(words + args), expect, env, note)

    yield case(base + ["--nope"], "error", "unknown option")
    yield case(base + ["--nope=1"], "error", "unknown option with a value")
    yield case(base + ["extra", "positional", "args"], "error", "extra arguments")
    if any(p.required for p in cmd.params):
        yield case([], "error", "missing required arguments")
    positional = [p for p in cmd.params if p.param_type_name == "argument"]
    for n, i in enumerate(_positional(base, cmd.params)):
        param = positional[n] if n < len(positional) else None
        name = getattr(param, "name", "")
        values = STUDY_BAD if _annotation(param) == "int" else \
            SESSION_BAD if name in ("session", "a", "b") else STR_BAD
        for value, expect in values:
            args = list(base)
            args[i] = value
            if name == "out_dir" or name == "agent":
                expect = "any" if name == "out_dir" else "error"
            yield case(args, expect, f"argument {name}={value[:40]!r}")
        if name == "agent":
            for value in ("nosuch", "nosuch.py:AGENT", "my_agent.py:NOPE", "my_agent.py:",
                          "os:path", "tinmen.cli:app", ":", "/nonexistent/x.py:A",
                          "notadb.db:x", "good.toml:x"):
                args = list(base)
                args[i] = value
                yield case(args, "error", f"agent {value!r}")
    for param in cmd.params:
        if param.param_type_name != "option" or not param.opts:
            continue
        opt = max(param.opts, key=len)
        kind = _annotation(param)
        if param.is_flag:
            yield case(base + [f"{opt}=maybe"], "error", f"flag {opt} given a value")
            continue
        yield case(base + [opt], "error", f"{opt} without its value")
        values = SPECIAL.get(opt) or {"int": INT_BAD, "float": FLOAT_BAD}.get(kind, STR_BAD)
        if opt in ("--model", "--load") and words[0] not in ("run", "example", "fork", "study"):
            values = [(v.replace("agent=", "parser=", 1) if v.startswith("agent=") else v, e)
                      for v, e in values]
        if opt == "--db" and words == ["db", "check"]:
            values = [(v, "error" if e == "error" or v in ("empty.db", "sqlite://") else e)
                      for v, e in values]
        for value, expect in values:
            if opt == "--load":
                value, expect = value.split("=", 1)[-1], "any"
            if opt == "--out" or (kind == "str" and opt not in SPECIAL and
                                  opt not in ("--policy", "--executor", "--format",
                                              "--scenario", "--method", "--user", "--images",
                                              "--task", "--loss", "--conflict", "--ladder",
                                              "--variant")):
                expect = "any"
            yield case(_replace(base, opt, value), expect, f"{opt}={value[:40]!r}")
    for var, value, expect in ENV_BAD:
        if "--db" in base:
            args = list(base) if var != "TINMEN_DB" else _drop(base, "--db")
            yield case(args, expect, f"env {var}={value!r}", ((var, value),))
    # two bad values at once, drawn at random
    opts = [p for p in cmd.params if p.param_type_name == "option" and not p.is_flag]
    for _ in range(3):
        if len(opts) < 2:
            break
        a, b = rng.sample(opts, 2)
        args = list(base)
        for p in (a, b):
            opt = max(p.opts, key=len)
            pool = SPECIAL.get(opt) or {"int": INT_BAD, "float": FLOAT_BAD}.get(
                _annotation(p), STR_BAD)
            args = _replace(args, opt, rng.choice(pool)[0])
        yield case(args, "any", "two random bad values")


def _drop(base: list[str], opt: str) -> list[str]:
    """``base`` without option ``opt`` and its value."""
    out, i = [], 0
    while i < len(base):
        if base[i] == opt:
            i += 2
            continue
        out.append(base[i])
        i += 1
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


# an agent that asks one question (a session can pause there); DIE_AFTER_ANSWER kills the
# process right after the answer — the same file tests/test_human_input_survives.py uses
from test_human_input_survives import AGENT_FILE as ASKER  # noqa: E402, F401 (re-exported)

