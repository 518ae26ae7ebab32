"""What every graph node receives, and how graphs are declared.

Nodes are module-level functions ``node(state, runtime) -> partial update`` where
``runtime.context`` is a :class:`Context` (models, recorder, seed, options) — never globals.
:func:`recorded` wraps a node so everything it records is attributed to one ``step`` row.
The agent definition itself (:class:`~tinmen.graphs.definition.AgentDef`) lives in
``graphs/definition.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from tinmen.graphs.definition import AgentDef, RunMode
from tinmen.graphs.recorder import Recorder
from tinmen.models.client import Models

__all__ = ["AgentDef", "Context", "RunMode", "recorded"]


@dataclass
class Context:
    """The typed runtime context of a tinmen graph.

    ``options`` are the agent's options, validated and completed with their defaults by the
    runner; ``mode`` says how model calls are served (a node never needs to know, but a
    node that trains a model in the session uses it to skip work whose result is recorded).
    """

    models: Models
    recorder: Recorder
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    mode: RunMode = RunMode.LIVE
    interrupted_step: Any = None  # set by the runner while a node waits for human input


def recorded(name: str, fn: Callable[..., Any], *, agent: str | None = None) -> Callable[..., Any]:
    """Wrap node ``fn`` so its beliefs, decisions and model calls land in one step row.

    A node that raised ``interrupt()`` runs again from its start when resumed; the runner
    then serves its earlier model calls from the record and this wrapper drops the partial
    step, so nothing is recorded twice.
    """

    @functools.wraps(fn)
    def node(state: Any, runtime: Runtime[Context]) -> Any:
        ctx = runtime.context
        if ctx.interrupted_step is not None and ctx.interrupted_step.node == name:
            ctx.recorder.discard_step(ctx.interrupted_step)
            ctx.interrupted_step = None
        checkpoint = _checkpoint_id()
        with ctx.recorder.step(name, agent=agent, checkpoint_id=checkpoint) as buf:
            buf.counters = ctx.models.counters()
            try:
                return fn(state, runtime)
            except BaseException as exc:
                if type(exc).__name__ == "GraphInterrupt":
                    ctx.interrupted_step = buf
                raise

    return node


def _checkpoint_id() -> str | None:
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return None
    return configurable.get("checkpoint_id") or configurable.get("checkpoint_ns") or None
