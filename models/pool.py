"""``ModelPool``: one loaded instance per spec, shared by every agent and session.

* **Load once.** The first request for a spec loads it (under a per-spec lock, so threads
  racing for the same model wait for one load); later requests reuse the instance.
* **Byte budget with LRU eviction.** Each device has a budget. When a load pushes a device
  over it, the least recently used *idle* models are moved to the CPU (from a GPU) or
  unloaded (from the CPU). A model in use is never evicted.
* **Batching.** Specs with ``max_batch_size > 1`` get a batch queue (``models/batching``)
  for ``generate`` and ``score``: continuous batching where the backend has a running batch
  (``transformers-lm``: requests join between decode steps), otherwise concurrent requests
  with equal parameters merged into one backend call; an idle queue flushes when full or
  ``batch_wait_ms`` after the first request.
* **Reporting.** :meth:`serve` returns the output with :class:`CallStats` (latency, queue
  wait, batch size, device), which the caller's recorder stores.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tinmen.models.batching import ContinuousBatcher, MergingBatcher
from tinmen.models.client import png_bytes, png_image
from tinmen.models.hidden import npy_bytes
from tinmen.models.memo import MEMO_OPS, RequestMemo
from tinmen.models.protocols import CAPABILITIES, CURRENT_STATS, CallStats, GenerateParams
from tinmen.models.registry import backend_class
from tinmen.models.remote_code import remote_code_allowed
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
    batcher: ContinuousBatcher | MergingBatcher | None = None
    loaded_at: float = field(default_factory=time.time)


class ModelPool:
    """Thread-safe shared model instances; see the module docstring."""

    def __init__(self, budget_bytes: Budget = None, *, allow_remote_code: bool = False,
                 memo_entries: int = 16) -> None:
        self.budget_bytes = budget_bytes
        self.memo = RequestMemo(memo_entries)  # repeats of deterministic requests (memo.py)
        # this run's permission to load specs whose options run model-folder code
        # (models/remote_code.py); the CLI's --trust-remote-code, never a stored value
        self.allow_remote_code = allow_remote_code
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
            with LOADING, remote_code_allowed(self.allow_remote_code):  # one load at a time
                cls = backend_class(spec.backend)
                # a composite (models/composite.py) serves its constituents from this pool
                backend = (cls.from_spec(spec, pool=self) if getattr(cls, "uses_pool", False)
                           else cls.from_spec(spec))
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
        memo_key = RequestMemo.key(spec, op, params, inputs) if op in MEMO_OPS else None
        hit = self.memo.get(memo_key) if memo_key else None
        if hit is not None:  # a repeat of a deterministic request: no model needed
            return hit[0], CallStats(device="memo"), dict(hit[1])
        entry = self._checkout(spec)
        try:
            _check_capability(entry, op)
            start = time.perf_counter()
            stats = CallStats(device=entry.backend.device())
            reporting = CURRENT_STATS.set(stats)  # a served backend reports retries here
            try:
                output, out_blobs = self._dispatch(entry, op, params, inputs, seed,
                                                   blobs or {}, stats)
            finally:
                CURRENT_STATS.reset(reporting)
            stats.latency_s = time.perf_counter() - start
            with self._lock:
                entry.calls += 1
            if memo_key:
                self.memo.put(memo_key, output, out_blobs)
            return output, stats, out_blobs
        finally:
            with self._lock:
                entry.in_use -= 1

    def _dispatch(self, entry: _Entry, op: str, params: dict[str, Any],
                  inputs: dict[str, Any], seed: int, blobs: dict[str, bytes],
                  stats: CallStats) -> tuple[Any, dict[str, bytes]]:
        backend = entry.backend
        # a served model's server batches concurrent requests itself: no pool-side merging
        batched = entry.spec.max_batch_size > 1 and not getattr(backend, "server_batches", False)
        if op == "generate":
            gen_params = GenerateParams(**params)
            if batched:
                gen, stats.queue_wait_s, stats.batch_size = self._batcher(entry).submit(
                    "generate", inputs["prompt"], gen_params, seed)
            else:
                gen = backend.generate([inputs["prompt"]], gen_params, [seed])[0]
            return gen.to_json(), {}
        if op == "score":
            if batched:
                scores, stats.queue_wait_s, stats.batch_size = self._batcher(entry).submit(
                    "score", inputs["prompt"], list(inputs["options"]))
            else:
                scores = backend.score(inputs["prompt"], inputs["options"])
            return [float(x) for x in scores], {}
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
        if op == "hidden_states":
            states = backend.hidden_states(inputs["texts"], params["layers"],
                                           params["batch_size"])
            return _blob_output(npy_bytes(states), "blob_sha256", shape=list(states.shape),
                                dtype=str(states.dtype))
        if op == "train":
            return _train(backend, params, inputs, blobs)
        raise ConfigError(f"unknown model operation '{op}'")

    def _batcher(self, entry: _Entry) -> ContinuousBatcher | MergingBatcher:
        with self._lock:
            if entry.batcher is None:
                kind = (ContinuousBatcher if hasattr(entry.backend, "decode_batch")
                        else MergingBatcher)
                entry.batcher = kind(entry.backend, entry.spec.max_batch_size,
                                     entry.spec.batch_wait_ms / 1000.0)
            return entry.batcher


def _blob_output(data: bytes, key: str, **extra: Any) -> tuple[Any, dict[str, bytes]]:
    """A result too large for JSON: stored once as a content-addressed blob."""
    sha = hashlib.sha256(data).hexdigest()
    return {key: sha, "bytes": len(data), **extra}, {sha: data}


def _train(backend: Any, params: dict[str, Any], inputs: dict[str, Any],
           blobs: dict[str, bytes]) -> tuple[Any, dict[str, bytes]]:
    missing = [sha[:12] for sha in inputs["checkpoints"] if sha not in blobs]
    if missing:
        raise ConfigError(f"training needs the input checkpoints {', '.join(missing)}; "
                          "they are neither in this call nor in the store")
    data, metrics = backend.train(params["recipe"], params["config"], inputs["data"],
                                  {sha: blobs[sha] for sha in inputs["checkpoints"]})
    return _blob_output(data, "checkpoint_sha256", metrics=metrics)


def _check_capability(entry: _Entry, op: str) -> None:
    protocol = CAPABILITIES.get(op)
    if protocol is None:
        raise ConfigError(f"unknown model operation '{op}'")
    if not hasattr(entry.backend, op):
        raise ConfigError(f"model '{entry.spec.name}' (backend {entry.spec.backend}) cannot "
                          f"{op.replace('_', ' ')}; bind that role to a model that can")
