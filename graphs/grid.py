"""A study grid from a TOML file, for any agent: conditions × repetitions × model
assignments.

::

    name = "topics"          # optional
    reps = 3                 # sessions per condition
    seed = 0                 # study seed (each session's seed derives from it)

    [inputs]                 # every session's inputs (the agent's inputs model checks them)
    request = "How long should I boil an egg?"

    [options]                # every session's options
    max_new_tokens = 16

    [axes]                   # the cartesian product of these option values
    max_new_tokens = [8, 16]

    [models]                 # model assignments: each role's specs, crossed with the axes
    agent = ["scripted:echo", "smollm2"]

    [[conditions]]           # or (and) explicit conditions, each crossed with the rest
    key = "short-request"
    inputs = { request = "Soft egg?" }

Which of ``axes`` / ``conditions`` (options and inputs varied), ``models`` and ``reps`` an
agent supports is declared by its definition (``AgentDef.axes``).
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tinmen.graphs.definition import AgentDef
from tinmen.graphs.study import Condition, StudyPlan
from tinmen.models.registry import parse_bindings, resolve_spec
from tinmen.models.spec import validated_model

from tinmen.errors import ConfigError


class ExplicitCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class Grid(BaseModel):
    """A parsed grid file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    reps: int = Field(1, ge=1, le=100_000)
    seed: int = Field(0, ge=0, lt=2**63)
    inputs: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    models: dict[str, list[str]] = Field(default_factory=dict)
    conditions: list[ExplicitCondition] = Field(default_factory=list)

    @classmethod
    def from_file(cls, path: str | Path) -> Grid:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read grid {path}: {exc}") from exc
        except RecursionError:
            raise ConfigError(f"cannot read grid {path}: it is nested too deeply") from None
        return validated_model(cls, data, f"grid {path}")


def _cells(grid: Grid) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]]:
    """(key, inputs, options, role -> spec text) of every condition."""
    axes = [[(name, v) for v in values] for name, values in sorted(grid.axes.items())]
    models = [[(role, s) for s in specs] for role, specs in sorted(grid.models.items())]
    explicit: list[ExplicitCondition | None] = [*grid.conditions] or [None]
    out = []
    for opts, roles, cond in itertools.product(itertools.product(*axes),
                                               itertools.product(*models), explicit):
        parts = [f"{k}={v}" for k, v in opts] + [f"{r}={s}" for r, s in roles]
        if cond is not None:
            parts.insert(0, cond.key)
        inputs = {**grid.inputs, **(cond.inputs if cond else {})}
        options = {**grid.options, **dict(opts), **(cond.options if cond else {})}
        out.append(("|".join(parts) or "all", inputs, options, dict(roles)))
    return out


def check_axes(agent: AgentDef, grid: Grid) -> None:
    used = {"conditions": bool(grid.axes or grid.conditions), "models": bool(grid.models),
            "reps": grid.reps > 1}
    unsupported = sorted(a for a, on in used.items() if on and a not in agent.axes)
    if unsupported:
        supported = ", ".join(sorted(agent.axes))
        raise ConfigError(f"agent '{agent.name}' does not support the study axes "
                          f"{', '.join(unsupported)} (it supports: {supported})")
    for role in grid.models:
        if role not in agent.roles:
            raise ConfigError(f"grid [models] names role '{role}'; agent '{agent.name}' has "
                              f"roles {', '.join(sorted(agent.roles))}")


def plan_from_grid(agent: AgentDef, ref: str, grid: Grid,
                   models: list[str] | None = None) -> StudyPlan:
    """The study plan of ``grid`` over ``agent``; ``models`` (``ROLE=SPEC``) fixes roles
    the grid does not vary."""
    check_axes(agent, grid)
    fixed = parse_bindings(models, agent.roles)
    cells = _cells(grid)
    if len({key for key, *_ in cells}) != len(cells):
        raise ConfigError("two grid conditions have the same key; give each [[conditions]] "
                          "a distinct key")
    conditions = [Condition(key, {"inputs": i, "options": o, "models": m})
                  for key, i, o, m in cells]
    specs = {text: resolve_spec(text) for *_, m in cells for text in m.values()}

    def inputs_for(cond: Condition, rep: int) -> dict[str, Any]:
        given = dict(cond.params["inputs"])
        return agent.rep_inputs(given, rep) if agent.rep_inputs else given

    return StudyPlan(
        graph=agent, ref=ref, name=grid.name or f"{agent.name} grid", conditions=conditions,
        reps=grid.reps, seed=grid.seed, inputs_for=inputs_for,
        bindings_for=lambda c: {**fixed, **{r: specs[s] for r, s in
                                            c.params["models"].items()}},
        options_for=lambda c: dict(c.params["options"]),
        config={"grid": grid.model_dump(mode="json"), "models": list(models or [])})
