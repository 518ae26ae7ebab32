"""The pool's batch queues: concurrent sessions' requests to one model share backend calls.

A model whose spec allows batching (``max_batch_size > 1``) gets one worker thread that
owns every ``generate`` and ``score`` call to it, so calls never compete for the cores:

* :class:`ContinuousBatcher`, for backends with ``decode_batch()`` (``transformers-lm``):
  the scheduler half of continuous batching (vLLM's split: a scheduler decides who runs, a
  model runner runs them). Between two decode steps it scores every waiting ``score``
  request in one batched call, admits waiting ``generate`` requests into the running batch
  up to ``max_batch_size`` (first come, first served), runs one decode step, and hands each
  finished request back at once; nobody waits for the slowest member of a batch.
* :class:`MergingBatcher`, for every other backend: requests with equal parameters are
  merged into one ``generate`` / ``score`` call.

When the model is idle the queue waits up to ``batch_wait_ms`` after the first request for
company (or until ``max_batch_size`` requests are there), so a burst starts as one batch.
A request's recorded ``batch_size`` is the number of requests it shared decode steps with
at most (itself included); ``queue_wait_s`` is the time until it was admitted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from tinmen.models.protocols import Generation, Prompt


class DecodeBatch(Protocol):
    """A backend's running batch (e.g. ``transformers-lm``'s ``RunningBatch``)."""

    size: int

    def keys(self) -> list[Any]: ...
    def add(self, requests: Sequence[tuple[Any, Prompt, Any, int]]
            ) -> list[tuple[Any, Generation]]: ...
    def step(self) -> list[tuple[Any, Generation]]: ...


@dataclass(eq=False)  # tickets are keys of the running batch: compared by identity
class _Ticket:
    op: str  # "generate": (prompt, params, seed); "score": (prompt, options)
    args: tuple[Any, ...]
    submitted: float = field(default_factory=time.perf_counter)
    future: Future = field(default_factory=Future)
    started: float = 0.0
    batch_size: int = 1

    @property
    def group(self) -> tuple[str, Any]:
        """Requests of one group may share a backend call."""
        return (self.op, self.args[1] if self.op == "generate" else None)

    def start(self, now: float, batch_size: int) -> None:
        self.started, self.batch_size = now, batch_size

    def done(self, result: Any) -> None:
        self.future.set_result((result, self.started - self.submitted, self.batch_size))


def score_many(backend: Any, prompts: list[Prompt], options: list[Sequence[str]]
               ) -> list[list[float]]:
    """Score several requests in one call where the backend can (``score_batch``)."""
    if hasattr(backend, "score_batch"):
        return backend.score_batch(prompts, options)
    return [backend.score(p, o) for p, o in zip(prompts, options, strict=True)]


class _Worker:
    """A queue of tickets and the thread that serves them."""

    def __init__(self, backend: Any, max_batch: int, wait_s: float) -> None:
        self.backend, self.max_batch, self.wait_s = backend, max_batch, wait_s
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._stopped = False
        self._worker = threading.Thread(target=self._run, daemon=True, name="tinmen-batcher")
        self._worker.start()

    def submit(self, op: str, *args: Any) -> tuple[Any, float, int]:
        """Serve one request; returns (result, queue wait in s, batch size)."""
        ticket = _Ticket(op, args)
        with self._cond:
            self._queue.append(ticket)
            self._cond.notify()
        return ticket.future.result()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _wait_for_work(self, busy: bool) -> bool:
        """Block (with the lock held) until there is work; False when stopped and drained."""
        while not self._queue and not busy and not self._stopped:
            self._cond.wait()
        if not self._queue:
            return busy
        if not busy:  # idle: give concurrent sessions batch_wait_ms to join the first one
            deadline = self._queue[0].submitted + self.wait_s
            while len(self._queue) < self.max_batch and not self._stopped:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
        return True

    def _take(self, tickets: list[_Ticket]) -> list[_Ticket]:
        for t in tickets:
            self._queue.remove(t)
        return tickets

    def _score(self, tickets: list[_Ticket]) -> None:
        now = time.perf_counter()
        for t in tickets:
            t.start(now, len(tickets))
        try:
            results = score_many(self.backend, [t.args[0] for t in tickets],
                                 [t.args[1] for t in tickets])
        except BaseException as exc:  # hand the error to every waiting caller
            _fail(tickets, exc)
            return
        for t, scores in zip(tickets, results, strict=True):
            t.done(scores)

    def _run(self) -> None:
        raise NotImplementedError


class MergingBatcher(_Worker):
    """Merges concurrent requests of one group (op and params) into one backend call."""

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._wait_for_work(busy=False):
                    return
                group = self._queue[0].group
                batch = self._take([t for t in self._queue if t.group == group]
                                   [: self.max_batch])
            if batch[0].op == "score":
                self._score(batch)
            else:
                self._generate(batch)

    def _generate(self, batch: list[_Ticket]) -> None:
        now = time.perf_counter()
        for t in batch:
            t.start(now, len(batch))
        try:
            gens = self.backend.generate([t.args[0] for t in batch], batch[0].args[1],
                                         [t.args[2] for t in batch])
        except BaseException as exc:
            _fail(batch, exc)
            return
        for t, gen in zip(batch, gens, strict=True):
            t.done(gen)


class ContinuousBatcher(_Worker):
    """Requests join the backend's running batch between decode steps; see the module doc."""

    def _run(self) -> None:
        batch: DecodeBatch | None = None
        while True:
            busy = batch is not None and batch.size > 0
            with self._cond:
                if not self._wait_for_work(busy):
                    return
                scores = self._take([t for t in self._queue if t.op == "score"])
                room = self.max_batch - (batch.size if batch is not None else 0)
                admits = self._take([t for t in self._queue if t.op == "generate"][:room])
            if scores:
                self._score(scores)
            if admits:
                if batch is None or not busy:  # a fresh batch per busy period follows
                    batch = self.backend.decode_batch()  # the model's current device
                self._admit(batch, admits)
            if batch is not None and batch.size and not self._step(batch):
                batch = None  # its cache is unusable after a failed step

    def _admit(self, batch: DecodeBatch, admits: list[_Ticket]) -> None:
        now, size = time.perf_counter(), batch.size + len(admits)
        for t in admits:
            t.start(now, size)
        try:
            finished = batch.add([(t, *t.args) for t in admits])
        except BaseException as exc:  # those already merged in keep decoding
            running = set(batch.keys())
            _fail([t for t in admits if t not in running and not t.future.done()], exc)
            return
        for t, gen in finished:
            t.done(gen)

    def _step(self, batch: DecodeBatch) -> bool:
        running = batch.keys()
        for t in running:
            t.batch_size = max(t.batch_size, batch.size)
        try:
            finished = batch.step()
        except BaseException as exc:  # hand the error to every member of the batch
            _fail(running, exc)
            return False
        for t, gen in finished:
            t.done(gen)
        return True


def _fail(tickets: list[_Ticket], exc: BaseException) -> None:
    for t in tickets:
        t.future.set_exception(exc)
