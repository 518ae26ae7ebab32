"""Agents known by name, and the import paths of agents outside the package.

Built-in agents are named here as lazy ``module:ATTR`` strings; installed packages add
theirs through the ``tinmen.agents`` entry-point group; a researcher's own file is named by
``path/to/file.py:ATTR`` or ``package.module:ATTR``. The session row stores the reference a
session was started with, so a replay, fork or resume imports the same definition again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tinmen.graphs.definition import AgentDef

from tinmen.errors import ConfigError
from tinmen.plugins import USER_MODULE_PREFIX, Registry

AGENTS = Registry("agent", "tinmen.agents", {
    "example": "tinmen.graphs.example:AGENT",
    "t2i": "tinmen.graphs.t2i:AGENT",
    "shopper": "tinmen.graphs.shopper:AGENT",
    "shopper-market": "tinmen.graphs.shopper:MARKET_AGENT",
    "w2s": "tinmen.graphs.w2s:AGENT",
    "judge": "tinmen.graphs.judge:AGENT",
})

def load_agent(ref: str) -> AgentDef:
    """The definition named ``ref`` (a registered name or an import path)."""
    agent = AGENTS.load(ref, references=True)
    if not isinstance(agent, AgentDef):
        raise ConfigError(f"'{ref}' is a {type(agent).__name__}, not a tinmen AgentDef; "
                          "define AGENT = AgentDef(...) (see examples/minimal_agent.py)")
    return agent

def agent_for_session(graph: str, graph_ref: str | None) -> AgentDef:
    """Import a stored session's agent again; a failure names the import path."""
    ref = graph_ref or graph
    try:
        return load_agent(ref)
    except ConfigError as exc:
        raise ConfigError(f"cannot import agent '{graph}' of this session from '{ref}' "
                          f"(run from the directory the session was started in?): "
                          f"{exc}") from exc.__cause__


def reference_of(agent: AgentDef) -> str:
    """How to import ``agent`` again: its registered name, else ``module:ATTR`` of the
    module that defines it, else ``FILE.py:ATTR`` for a script or a user's file (relative to
    the current directory when it lies below it)."""
    if agent.name in AGENTS and AGENTS.load(agent.name) is agent:
        return agent.name
    module = sys.modules.get(getattr(agent.build, "__module__", ""), None)
    attr = next((k for k, v in vars(module).items() if v is agent), None) if module else None
    if module is None or attr is None:
        raise ConfigError(f"cannot tell how to import agent '{agent.name}' again: define it "
                          "at module level (AGENT = AgentDef(...)) in the module of its build "
                          "function, or pass its import path")
    file = getattr(module, "__file__", None)
    if module.__name__ == "__main__" or module.__name__.startswith(USER_MODULE_PREFIX):
        if file is None:
            raise ConfigError(f"agent '{agent.name}' is defined interactively; put it in a "
                              "file to record sessions that can be replayed")
        path = Path(file).resolve()
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        return f"{shown}:{attr}"
    return f"{module.__name__}:{attr}"
