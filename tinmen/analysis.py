"""The analysis API (see :mod:`tinmen.storage.analysis`): every table of the store as a
pandas DataFrame, for notebooks, reports, the viewer and ``tinmen export``."""

from tinmen.storage.analysis import (
    TABLES,
    beliefs,
    decisions,
    export_study,
    handoffs,
    human_inputs,
    metrics,
    model_calls,
    sessions,
    steps,
)

__all__ = ["TABLES", "beliefs", "decisions", "export_study", "handoffs", "human_inputs", "metrics",
           "model_calls", "sessions", "steps"]
