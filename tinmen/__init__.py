"""tinmen: LangGraph agents on shared model pools, every belief and decision in a SQL store,
exact replay and forks.

The public API, imported lazily (``import tinmen`` stays cheap for the CLI)::

    from tinmen import AgentDef, Context, recorded          # define an agent
    from tinmen import run_session, replay_session, fork_session, resume_session
    from tinmen import run_study, StudyPlan, Condition      # studies
    from tinmen import Store, ModelPool, ModelSpec, resolve_spec
    from tinmen import analysis                             # DataFrames of the store
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AgentDef": "tinmen.graphs.definition", "RunMode": "tinmen.graphs.definition",
    "Status": "tinmen.graphs.definition", "parse_sets": "tinmen.graphs.definition",
    "Context": "tinmen.graphs.runtime", "recorded": "tinmen.graphs.runtime",
    "run_session": "tinmen.graphs.session", "resume_session": "tinmen.graphs.session",
    "start_session": "tinmen.graphs.session", "SessionSpec": "tinmen.graphs.session",
    "checkpointer_for": "tinmen.graphs.session",
    "replay_session": "tinmen.graphs.replay", "fork_session": "tinmen.graphs.replay",
    "diff_sessions": "tinmen.graphs.replay",
    "run_study": "tinmen.graphs.study", "StudyPlan": "tinmen.graphs.study",
    "Condition": "tinmen.graphs.study",
    "load_agent": "tinmen.graphs.registry", "AGENTS": "tinmen.graphs.registry",
    "Store": "tinmen.storage", "ModelPool": "tinmen.models.pool",
    "ModelSpec": "tinmen.models.spec", "resolve_spec": "tinmen.models.registry",
    "parse_bindings": "tinmen.models.registry",
}

__all__ = sorted([*_EXPORTS, "analysis"])


def __getattr__(name: str) -> Any:
    if name == "analysis":
        return importlib.import_module("tinmen.analysis")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tinmen' has no attribute '{name}'")
