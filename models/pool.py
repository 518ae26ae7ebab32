"""``ModelPool``: one loaded instance per spec, shared by every agent and session.

* **Load once.** The first request for a spec loads it (under a per-spec lock, so threads
  racing for the same model wait for one load); later requests reuse the instance.
* **Byte budget with LRU eviction.** Each device has a budget. When a load pushes a device
  over it, the least recently used *idle* models are moved to the CPU (from a GPU) or
  unloaded (from the CPU). A model in use is never evicted.
* **Batching.** Specs with ``max_batch_size > 1`` get a queue that merges concurrent
  ``generate`` requests with equal parameters into one backend call; it flushes when full
  or ``batch_wait_ms`` after the first request.
* **Reporting.** :meth:`serve` returns the output with :class:`CallStats` (latency, queue
  wait, batch size, device), which the caller's recorder stores.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tinmen.models.client import png_bytes, png_image
from tinmen.models.protocols import CAPABILITIES, CallStats, GenerateParams
from tinmen.models.registry import backend_class
from tinmen.models.sources import LOADING
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

Budget = int | dict[str, int] | None


@dataclass
class _Entry:
    spec: ModelSpec
    backend: Any
    nbytes: int
    in_use: int = 0
    calls: int = 0
    batcher: _Batcher | None = None
    loaded_at: float = field(default_factory=time.time)


class ModelPool:
    """Thread-safe shared model instances; see the module docstring."""

    def __init__(self, budget_bytes: Budget = None) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # LRU order: oldest first
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        self.loads: dict[str, int] = {}  # spec key -> how many times it was loaded
        self.evictions: list[tuple[str, str]] = []  # (spec name, "to-cpu" | "unloaded")

    # ----------------------------------------------------------------- lifecycle
    @contextmanager
    def acquire(self, spec: ModelSpec) -> Iterator[Any]:
        """Yield the loaded backend for ``spec``; it cannot be evicted while held."""
        entry = self._checkout(spec)
        try:
            yield entry.backend
        finally:
            with self._lock:
                entry.in_use -= 1

    def _checkout(self, spec: ModelSpec) -> _Entry:
        key = spec.key
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.in_use += 1
                self._entries.move_to_end(key)
                return entry
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:  # another thread loaded it while we waited
                    entry.in_use += 1
                    self._entries.move_to_end(key)
                    return entry
            with LOADING:  # loads of different specs must not overlap either
                backend = backend_class(spec.backend).from_spec(spec)
            with self._lock:
                entry = _Entry(spec=spec, backend=backend, nbytes=int(backend.nbytes()),
                               in_use=1)
                self._entries[key] = entry
                self.loads[key] = self.loads.get(key, 0) + 1
                self._enforce_budget(backend.device())
                return entry

    def _budget_for(self, device: str) -> int | None:
        if isinstance(self.budget_bytes, dict):
            return self.budget_bytes.get(device, self.budget_bytes.get(device.split(":")[0]))
        return self.budget_bytes

    def _enforce_budget(self, device: str) -> None:
        budget = self._budget_for(device)
        if budget is None:
            return
        while self.bytes_on(device) > budget:
            idle = [(k, e) for k, e in self._entries.items()
                    if e.in_use == 0 and e.backend.device() == device]
            if not idle:
                return  # everything on the device is in use: never evict those
            key, victim = idle[0]
            if device != "cpu":
                victim.backend.to_device("cpu")
                self.evictions.append((victim.spec.name, "to-cpu"))
                self._enforce_budget("cpu")
            else:
                self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        if entry.batcher is not None:
            entry.batcher.stop()
        entry.backend.close()
        self.evictions.append((entry.spec.name, "unloaded"))

    def bytes_on(self, device: str) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values() if e.backend.device() == device)

    def loaded(self) -> list[dict[str, Any]]:
        """What is loaded now: name, backend, device, bytes, calls, in use."""
        with self._lock:
            return [{"name": e.spec.name, "backend": e.spec.backend, "key": k,
                     "device": e.backend.device(), "bytes": e.nbytes, "calls": e.calls,
                     "in_use": e.in_use} for k, e in self._entries.items()]

    def is_loaded(self, spec: ModelSpec) -> bool:
        with self._lock:
            return spec.key in self._entries

    def close(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._drop(key)

    # ----------------------------------------------------------------- serving
    def serve(self, spec: ModelSpec, op: str, params: dict[str, Any], inputs: dict[str, Any],
              seed: int, blobs: dict[str, bytes] | None = None
              ) -> tuple[Any, CallStats, dict[str, bytes]]:
        """Run one request; returns (JSON-able output, stats, new blobs by sha256)."""
        entry = self._checkout(spec)
        try:
            _check_capability(entry, op)
            start = time.perf_counter()
            stats = CallStats(device=entry.backend.device())
            output, out_blobs = self._dispatch(entry, op, params, inputs, seed, blobs or {},
                                               stats)
            stats.latency_s = time.perf_counter() - start
            with self._lock:
                entry.calls += 1
            return output, stats, out_blobs
        finally:
            with self._lock:
                entry.in_use -= 1

    def _dispatch(self, entry: _Entry, op: str, params: dict[str, Any],
                  inputs: dict[str, Any], seed: int, blobs: dict[str, bytes],
                  stats: CallStats) -> tuple[Any, dict[str, bytes]]:
        backend = entry.backend
        if op == "generate":
            gen_params = GenerateParams(**params)
            if entry.spec.max_batch_size > 1:
                gen, stats.queue_wait_s, stats.batch_size = self._batcher(entry).submit(
                    inputs["prompt"], gen_params, seed)
            else:
                gen = backend.generate([inputs["prompt"]], gen_params, [seed])[0]
            return gen.to_json(), {}
        if op == "score":
            return [float(x) for x in backend.score(inputs["prompt"], inputs["options"])], {}
        if op == "generate_images":
            image = backend.generate_images([inputs["prompt"]], [seed], params)[0]
            data = png_bytes(image)
            sha = hashlib.sha256(data).hexdigest()
            return {"image_sha256": sha, "width": image.width, "height": image.height}, {sha: data}
        if op == "score_image_text":
            image = png_image(blobs[inputs["image_sha256"]])
            return float(backend.score_image_text([image], [inputs["text"]])[0]), {}
        if op == "embed":
            return [list(map(float, v)) for v in backend.embed(inputs["texts"])], {}
        raise ConfigError(f"unknown model operation '{op}'")

    def _batcher(self, entry: _Entry) -> _Batcher:
        with self._lock:
            if entry.batcher is None:
                entry.batcher = _Batcher(entry.backend, entry.spec.max_batch_size,
                                         entry.spec.batch_wait_ms / 1000.0)
            return entry.batcher


def _check_capability(entry: _Entry, op: str) -> None:
    protocol = CAPABILITIES.get(op)
    if protocol is None:
        raise ConfigError(f"unknown model operation '{op}'")
    if not hasattr(entry.backend, op):
        raise ConfigError(f"model '{entry.spec.name}' (backend {entry.spec.backend}) cannot "
                          f"{op.replace('_', ' ')}; bind that role to a model that can")


class _Batcher:
    """Merges concurrent generate requests with equal params into one backend call."""

    def __init__(self, backend: Any, max_batch: int, wait_s: float) -> None:
        self.backend, self.max_batch, self.wait_s = backend, max_batch, wait_s
        self._cond = threading.Condition()
        self._queue: list[tuple[Any, GenerateParams, int, float, Future]] = []
        self._stopped = False
        self._worker = threading.Thread(target=self._run, daemon=True, name="tinmen-batcher")
        self._worker.start()

    def submit(self, prompt: Any, params: GenerateParams, seed: int) -> tuple[Any, float, int]:
        future: Future = Future()
        with self._cond:
            self._queue.append((prompt, params, seed, time.perf_counter(), future))
            self._cond.notify()
        return future.result()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _take_batch(self) -> list[tuple[Any, GenerateParams, int, float, Future]]:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped and not self._queue:
                return []
            deadline = self._queue[0][3] + self.wait_s
            while len(self._queue) < self.max_batch and not self._stopped:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            params = self._queue[0][1]
            batch = [r for r in self._queue if r[1] == params][: self.max_batch]
            for r in batch:
                self._queue.remove(r)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            started = time.perf_counter()
            try:
                gens = self.backend.generate([r[0] for r in batch], batch[0][1],
                                             [r[2] for r in batch])
            except BaseException as exc:  # hand the error to every waiting caller
                for r in batch:
                    r[4].set_exception(exc)
                continue
            for r, gen in zip(batch, gens, strict=True):
                r[4].set_result((gen, started - r[3], len(batch)))
