"""Scripted policies with known answers for the composite-model tests: a base and an
aligned model that answer the same question in different words."""

from __future__ import annotations

from typing import Any


class BaseAnswer:
    """Always 'the answer is 42 because six times seven'."""

    def respond(self, prompt: Any, params: Any, seed: int) -> str:
        return "the answer is 42 because six times seven"


class AlignedAnswer:
    """Always 'the answer is forty-two as I computed'."""

    def respond(self, prompt: Any, params: Any, seed: int) -> str:
        return "the answer is forty-two as I computed"
