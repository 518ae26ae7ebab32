"""User-facing errors. Each says what was wrong and how to fix it, in one line.

The CLI prints ``TinmenError`` messages without a traceback and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TinmenError(Exception):
    """Base class for errors caused by user input or the environment, not by a bug."""


class ConfigError(TinmenError):
    """A malformed spec, config file, or command-line value."""


class UnknownModelError(ConfigError):
    """A model name or backend that is not registered."""


class MissingDependencyError(TinmenError):
    """An optional package a backend needs is not installed."""


class StoreError(TinmenError):
    """The store cannot be opened, is locked, or holds unexpected content."""


class NotFoundError(TinmenError):
    """A session, study or artifact id that is not in the store."""


class ReplayDivergence(TinmenError):
    """A replayed session asked for a model call that differs from the recorded one."""

    def __init__(self, message: str, *, step: str | None = None, role: str | None = None,
                 call_index: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.role = role
        self.call_index = call_index
        self.detail = detail


class BeliefEditError(TinmenError):
    """A user edit of a belief graph that names something missing or is malformed."""


class ServedModelError(TinmenError):
    """A served model (``openai-compatible``) could not be reached or kept failing; carries
    how many times the request was retried before giving up."""

    def __init__(self, message: str, *, retries: int = 0) -> None:
        super().__init__(message)
        self.retries = retries


class ServerRefusedError(ConfigError):
    """A served model's server cannot do what was asked (an endpoint, log-probs, a schema)."""
