"""A bounded memo of deterministic requests, held by one :class:`ModelPool`.

Some operations are pure functions of (model identity, params, inputs): hidden states of a
frozen LM, a training recipe with its seed in its config. Sessions of one study often ask
the same one (every condition of a data seed reads the same features; both variants of a
judge rep train the same seed model), so the pool answers a repeat from memory. The call
seed is left out of the key on purpose: these operations do not sample. Every call is
still recorded by the session that made it; the memo only saves the computation.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from tinmen.models.spec import ModelSpec

MEMO_OPS = frozenset({"hidden_states", "train"})  # deterministic: no sampling, no seed


class RequestMemo:
    """LRU map request key → (output, blobs), at most ``entries`` requests."""

    def __init__(self, entries: int = 16) -> None:
        self.entries = entries
        self.hits = 0
        self._items: OrderedDict[str, tuple[Any, dict[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(spec: ModelSpec, op: str, params: dict[str, Any], inputs: dict[str, Any]) -> str:
        blob = json.dumps({"op": op, "model": spec.identity, "params": params,
                           "inputs": inputs}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> tuple[Any, dict[str, bytes]] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return found

    def put(self, key: str, output: Any, blobs: dict[str, bytes]) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._items[key] = (output, dict(blobs))
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
