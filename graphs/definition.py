"""The one contract between tinmen and an agent: :class:`AgentDef`.

A definition carries everything tinmen needs to run, study, replay, fork, resume and report
a LangGraph graph: its name and version, the model roles it calls (with default specs), a
typed options model and a typed inputs model (pydantic, validated once by the runner, before
anything is written), the graph builder, which study axes it supports, and optionally a
report. The built-in agents and a researcher's own file use it the
same way::

    AGENT = AgentDef(name="my-agent", build=build, roles={"agent": "smollm2"},
                     options=MyOptions, inputs=MyInputs,
                     initial_state=lambda inputs, options: {"request": inputs["request"]},
                     output=lambda state: {"reply": state.get("reply")})

and run with ``tinmen run path/to/my_agent.py:AGENT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from tinmen.storage.orm import RunMode, Status

from tinmen.errors import ConfigError

__all__ = ["AXES", "AgentDef", "AnyInputs", "NoOptions", "RunMode", "Status", "parse_sets"]


class NoOptions(BaseModel):
    """An agent without options: any ``--set`` is an error."""

    model_config = ConfigDict(extra="forbid")


class AnyInputs(BaseModel):
    """Inputs are passed through as given (an agent that declares no inputs model)."""

    model_config = ConfigDict(extra="allow")


AXES = frozenset({"conditions", "reps", "models"})


@dataclass(frozen=True)
class AgentDef:
    """A graph tinmen can run by name or import path; see the module docstring."""

    name: str
    build: Callable[[Any], Any]  # checkpointer -> compiled LangGraph graph
    roles: dict[str, str]  # role -> default spec ("" = optional, unbound unless given)
    initial_state: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # inputs, opts
    output: Callable[[dict[str, Any]], dict[str, Any]]  # final state -> stored output
    options: type[BaseModel] = NoOptions
    inputs: type[BaseModel] = AnyInputs
    version: str = "1"
    description: str = ""
    axes: frozenset[str] = AXES  # which study axes a grid may use
    # inputs of repetition ``rep`` from the grid's inputs (e.g. a per-rep data seed)
    rep_inputs: Callable[[dict[str, Any], int], dict[str, Any]] | None = None
    report: str | None = None  # "module:function(store, study_id, out_dir) -> dict"

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """``given`` completed with the defaults and validated: what a session stores."""
        return _validated(self.options, given or {}, f"{self.name} option")

    def resolve_inputs(self, given: dict[str, Any] | None) -> dict[str, Any]:
        return _validated(self.inputs, given or {}, f"{self.name} input")

    def option_fields(self) -> dict[str, str]:
        """Option name -> its documentation (for ``--help`` and error messages)."""
        return {name: (f.description or "") for name, f in self.options.model_fields.items()}


def _validated(model: type[BaseModel], data: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        return _storable(model.model_validate(data).model_dump(mode="json"), what)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"]) or "value"
        if err["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise ConfigError(f"unknown {what} '{key}'; known: {known}") from None
        shown = repr(err.get("input"))[:80]
        raise ConfigError(f"bad {what} {key}={shown}: {err['msg']}") from None


def _storable(values: dict[str, Any], what: str) -> dict[str, Any]:
    """Options and inputs are stored (and seeds derived from them): an integer past 64
    bits or a nan is refused here, whatever the agent's model allows."""
    import math

    def check(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                check(f"{key}.{k}", v)
        elif isinstance(value, list | tuple):
            for v in value:
                check(key, v)
        elif isinstance(value, int) and not isinstance(value, bool) and \
                not -2**63 <= value < 2**63:
            raise ConfigError(f"bad {what} {key}={value}: too large (the most is 2**63 - 1)")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"bad {what} {key}={value}: not a finite number")
    for key, value in values.items():
        check(key, value)
    return values


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs; VALUE is JSON when it parses (``train={"epochs": 5}``),
    text otherwise. The agent's options model then validates the keys and values."""
    import json

    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw
        except RecursionError:
            raise ConfigError(f"--set {key.strip()}: the value is nested too deeply to "
                              "read") from None
    return options
