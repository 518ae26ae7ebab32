"""What graph nodes call: a role-bound, recorded view of the pool.

Nodes never touch backends directly. They call ``models.generate(role, prompt, ...)`` and
friends on a :class:`Models` object from their runtime context. Every call is turned into a
canonical request (op, model identity, params, inputs), hashed, given a per-role call index
and a derived seed, served, and handed to a :class:`CallSink` (the recorder) as a
:class:`CallRecord`.

Three implementations share this file's logic:

* :class:`LiveModels` serves calls from a :class:`~tinmen.models.pool.ModelPool`;
* :class:`RecordedModels` serves them from a session's records (exact replay, resume after
  an interrupt, and the replayed prefix of a fork), checking each request hash, and hands
  calls past the records to a fallback (``None`` = a replay: running out is a divergence).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tinmen.models.composite import PARTS, algorithm, constituent_specs, is_composite
from tinmen.models.protocols import GenerateParams, Generation, Prompt
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError, ReplayDivergence


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Choice:
    """A distribution over allowed options obtained by scoring each one."""

    options: tuple[str, ...]
    logprobs: tuple[float, ...]

    @property
    def probs(self) -> tuple[float, ...]:
        top = max(self.logprobs)
        weights = [math.exp(lp - top) for lp in self.logprobs]
        total = sum(weights)
        return tuple(w / total for w in weights)

    @property
    def best(self) -> str:
        return self.options[max(range(len(self.options)), key=lambda i: self.logprobs[i])]

    @property
    def entropy(self) -> float:
        return -sum(p * math.log(p) for p in self.probs if p > 0)

    @property
    def top1(self) -> float:
        return max(self.probs)


@dataclass
class CallRecord:
    """Everything needed to store one model call and to serve it again."""

    role: str
    op: str
    call_index: int
    spec: dict[str, Any]
    params: dict[str, Any]
    inputs: dict[str, Any]
    request_hash: str
    seed: int
    output: Any
    latency_s: float = 0.0
    queue_wait_s: float = 0.0
    batch_size: int = 1
    device: str = "cpu"
    retries: int = 0  # transient failures retried before the answer (served models)
    blobs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes (images)
    seq: int | None = None  # set by the recorder: the call's place in the session's order

    @property
    def token_logprobs(self) -> list[float] | None:
        if self.op == "generate":
            found = self.output.get("token_logprobs", [])
            return None if found is None else list(found)  # None: the model gave none
        return None


@dataclass(frozen=True)
class Trained:
    """What a ``train`` call returns: the new checkpoint's sha256, its bytes (``None`` only
    where the record holds the call but not the artifact) and the recipe's metrics."""

    sha256: str
    data: bytes | None
    metrics: dict[str, float]


class CallSink(Protocol):
    def model_call(self, record: CallRecord) -> None: ...


class NullSink:
    """Records nothing (recording switched off, e.g. in benchmarks)."""

    def model_call(self, record: CallRecord) -> None:
        return None


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from a path of names/numbers (study → condition → session → role → call)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def request_hash(op: str, spec: ModelSpec, params: dict[str, Any], inputs: dict[str, Any],
                 seed: int) -> str:
    blob = json.dumps({"op": op, "model": spec.identity, "params": params, "inputs": inputs,
                       "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_image(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


# --------------------------------------------------------------------------- base
class Models:
    """Role-bound model calls. Subclasses implement :meth:`_serve` only."""

    def __init__(self, bindings: dict[str, ModelSpec], sink: CallSink | None = None,
                 seed: int = 0) -> None:
        self.bindings = dict(bindings)
        self.sink: CallSink = sink or NullSink()
        self.seed = seed
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- public API used by nodes -------------------------------------------------
    def generate(self, role: str, prompt: Prompt, *, max_new_tokens: int = 64,
                 temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] = (),
                 json_schema: dict[str, Any] | None = None) -> Generation:
        params = GenerateParams(max_new_tokens=max_new_tokens, temperature=temperature,
                                top_p=top_p, stop=tuple(stop), json_schema=json_schema)
        rec = self._call_or_composite(role, "generate", params.model_dump(mode="json"),
                                      {"prompt": prompt})
        return Generation.from_json(rec.output)

    def _call_or_composite(self, role: str, op: str, params: dict[str, Any],
                           inputs: dict[str, Any]) -> CallRecord:
        if is_composite(self.spec_for(role)):
            return self._composite(role, op, params, inputs)
        return self._call(role, op, params, inputs)

    def score(self, role: str, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Log-probability of each option as the continuation of ``prompt``."""
        if not options:
            raise ConfigError("score() needs at least one option")
        rec = self._call_or_composite(role, "score", {}, {"prompt": prompt,
                                                          "options": list(options)})
        return [float(x) for x in rec.output]

    def choose(self, role: str, prompt: Prompt, options: Sequence[str]) -> Choice:
        """Distribution over ``options`` from the model's own scores (never from its prose)."""
        return Choice(tuple(options), tuple(self.score(role, prompt, options)))

    def generate_image(self, role: str, prompt: str, **params: Any) -> Any:
        """A PIL image; its PNG is stored once as a content-addressed artifact."""
        rec = self._call(role, "generate_images", dict(params), {"prompt": prompt})
        image = png_image(rec.blobs[rec.output["image_sha256"]])
        image.info["sha256"] = rec.output["image_sha256"]  # the stored artifact's key
        return image

    def score_image_text(self, role: str, image: Any, text: str) -> float:
        data = png_bytes(image)
        sha = hashlib.sha256(data).hexdigest()
        rec = self._call(role, "score_image_text", {}, {"image_sha256": sha, "text": text},
                         blobs={sha: data})
        return float(rec.output)

    def embed(self, role: str, texts: Sequence[str]) -> list[list[float]]:
        rec = self._call(role, "embed", {}, {"texts": list(texts)})
        return [list(v) for v in rec.output]

    def hidden_states(self, role: str, texts: Sequence[str], layers: Sequence[int | None], *,
                      batch_size: int = 16) -> dict[int | None, Any]:
        """Layer (None = last) -> (len(texts), width) float32 array of mean-pooled hidden
        states; stored once as a content-addressed ``.npy`` blob, so a replay needs no LM.
        ``batch_size`` is part of the request: padding can move the last float bits."""
        from tinmen.models.hidden import from_npy

        rec = self._call(role, "hidden_states", {"layers": list(layers),
                                                 "batch_size": int(batch_size)},
                         {"texts": list(texts)})
        states = from_npy(rec.blobs[rec.output["blob_sha256"]])
        return {layer: states[i] for i, layer in enumerate(layers)}

    def train(self, role: str, recipe: str, *, config: dict[str, Any], data: dict[str, Any],
              checkpoints: Sequence[str] = (), blobs: dict[str, bytes] | None = None
              ) -> Trained:
        """Run training recipe ``recipe`` (``models/backends/trainer.py``) from the input
        checkpoints (their sha256; ``blobs`` holds the bytes of those the caller has). The
        new checkpoint is stored once as a content-addressed artifact: a replay reads it
        from the record, without training."""
        rec = self._call(role, "train", {"recipe": recipe, "config": config},
                         {"data": data, "checkpoints": list(checkpoints)}, blobs=blobs)
        sha = rec.output["checkpoint_sha256"]
        return Trained(sha, rec.blobs.get(sha), dict(rec.output.get("metrics", {})))

    def rebind(self, role: str, spec: ModelSpec) -> None:
        """Point ``role`` at another model for the calls that follow (e.g. a new checkpoint
        trained inside the session); every later call records the spec that served it."""
        with self._lock:
            self.bindings[role] = spec

    def spec_for(self, role: str) -> ModelSpec:
        constituent = self._constituent_spec(role)
        if constituent is not None:
            return constituent
        try:
            return self.bindings[role]
        except KeyError:
            roles = ", ".join(sorted(self.bindings)) or "none"
            raise ConfigError(f"no model bound to role '{role}' (bound roles: {roles}); "
                              f"pass --model {role}=SPEC") from None

    def counters(self) -> dict[str, int]:
        """Calls made so far per role (the next call's index)."""
        with self._lock:
            return dict(self._counters)

    def set_counters(self, counters: dict[str, int]) -> None:
        with self._lock:
            self._counters = dict(counters)

    # -- composites (models/composite.py) ---------------------------------------
    def _constituent_spec(self, role: str) -> ModelSpec | None:
        """``ROLE.PART`` of a role bound to a composite spec: that constituent's spec."""
        parent, dot, part = role.rpartition(".")
        if not dot or role in self.bindings:
            return None
        try:
            spec = self.spec_for(parent)
        except ConfigError:
            return None
        if not is_composite(spec) or part not in PARTS[spec.backend]:
            return None
        return constituent_specs(spec)[part]

    def _composite(self, role: str, op: str, params: dict[str, Any],
                   inputs: dict[str, Any]) -> CallRecord:
        """Run a composite model: its constituent calls are ordinary recorded calls of roles
        ``ROLE.PART`` and each handoff a decision; the composite call itself is recorded
        too (device ``composite``), so its output and signals are queryable."""
        index = self._next_index(role)
        spec = self._spec_for_call(role, index)
        seed = self._seed_for_call(role, index)
        digest = request_hash(op, spec, params, inputs, seed)
        self._check_composite(role, op, index, digest, params, inputs)
        via, alg, start = _RoleConstituents(self, role), algorithm(spec), time.perf_counter()
        if op == "generate":
            gen, extra = alg.generate(via, inputs["prompt"], GenerateParams(**params))
            output: Any = {**gen.to_json(), "composite": extra}
        else:
            output = [float(x) for x in alg.score(via, inputs["prompt"], inputs["options"])]
        record = CallRecord(role=role, op=op, call_index=index,
                            spec=spec.model_dump(mode="json"), params=params, inputs=inputs,
                            request_hash=digest, seed=seed, output=output,
                            latency_s=time.perf_counter() - start, device="composite")
        self.sink.model_call(record)
        return record

    def _check_composite(self, role: str, op: str, index: int, digest: str,
                         params: dict[str, Any], inputs: dict[str, Any]) -> None:
        return None

    # -- machinery ---------------------------------------------------------------
    def _next_index(self, role: str) -> int:
        with self._lock:
            index = self._counters.get(role, 0)
            self._counters[role] = index + 1
            return index

    def _call(self, role: str, op: str, params: dict[str, Any], inputs: dict[str, Any],
              blobs: dict[str, bytes] | None = None) -> CallRecord:
        self.spec_for(role)  # fail on an unbound role before a call index is spent
        index = self._next_index(role)
        spec = self._spec_for_call(role, index)
        seed = self._seed_for_call(role, index)
        digest = request_hash(op, spec, params, inputs, seed)
        record = self._serve(role, op, index, spec, params, inputs, seed, digest, blobs or {})
        record.blobs.update(blobs or {})
        self.sink.model_call(record)
        return record

    def _spec_for_call(self, role: str, index: int) -> ModelSpec:
        return self.spec_for(role)

    def _seed_for_call(self, role: str, index: int) -> int:
        return derive_seed(self.seed, role, index)

    def _serve(self, role: str, op: str, index: int, spec: ModelSpec, params: dict[str, Any],
               inputs: dict[str, Any], seed: int, digest: str,
               blobs: dict[str, bytes]) -> CallRecord:
        raise NotImplementedError


# --------------------------------------------------------------------------- live
class LiveModels(Models):
    """Serves calls from a shared :class:`ModelPool`."""

    def __init__(self, pool: Any, bindings: dict[str, ModelSpec], sink: CallSink | None = None,
                 seed: int = 0) -> None:
        super().__init__(bindings, sink, seed)
        self.pool = pool

    def _serve(self, role: str, op: str, index: int, spec: ModelSpec, params: dict[str, Any],
               inputs: dict[str, Any], seed: int, digest: str,
               blobs: dict[str, bytes]) -> CallRecord:
        output, stats, out_blobs = self.pool.serve(spec, op, params, inputs, seed, blobs)
        return CallRecord(role=role, op=op, call_index=index, spec=spec.model_dump(mode="json"),
                          params=params, inputs=inputs, request_hash=digest, seed=seed,
                          output=output, latency_s=stats.latency_s,
                          queue_wait_s=stats.queue_wait_s, batch_size=stats.batch_size,
                          device=stats.device, retries=stats.retries, blobs=out_blobs)


# --------------------------------------------------------------------------- recorded
class RecordedModels(Models):
    """Serves calls from records keyed by (role, call index); see the module docstring.

    ``step_of`` names the step currently running, for divergence reports.
    """

    def __init__(self, records: Sequence[CallRecord], bindings: dict[str, ModelSpec],
                 sink: CallSink | None = None, seed: int = 0,
                 fallback: Models | None = None,
                 step_of: Callable[[], str | None] | None = None) -> None:
        super().__init__(bindings, sink, seed)
        self.records = {(r.role, r.call_index): r for r in records}
        self.fallback = fallback
        self.step_of = step_of or (lambda: None)
        self.served = 0

    def rebind(self, role: str, spec: ModelSpec) -> None:
        """Point ``role`` at another model for the calls that follow (e.g. a new checkpoint
        trained inside the session); every later call records the spec that served it.
        A fork's live calls go to the fallback, so it is re-bound too."""
        with self._lock:
            self.bindings[role] = spec
        if self.fallback is not None:
            self.fallback.rebind(role, spec)

    def spec_for(self, role: str) -> ModelSpec:
        constituent = self._constituent_spec(role)
        if constituent is not None:
            return constituent
        if self.fallback is not None and role in self.fallback.bindings:
            return self.fallback.bindings[role]
        for (r_role, _), rec in self.records.items():
            if r_role == role:
                return ModelSpec.model_validate(rec.spec)
        return super().spec_for(role)

    def _spec_for_call(self, role: str, index: int) -> ModelSpec:
        rec = self.records.get((role, index))
        return ModelSpec.model_validate(rec.spec) if rec else self.spec_for(role)

    def _seed_for_call(self, role: str, index: int) -> int:
        # A fork may run with a new seed: its replayed prefix keeps the recorded seeds.
        rec = self.records.get((role, index))
        if rec is not None and self.fallback is not None:
            return rec.seed
        return super()._seed_for_call(role, index)

    def _check_composite(self, role: str, op: str, index: int, digest: str,
                         params: dict[str, Any], inputs: dict[str, Any]) -> None:
        """A composite runs again on replay (its constituents are served from the record);
        its own request must still match the recorded one."""
        rec = self.records.get((role, index))
        if rec is None and self.fallback is None:
            raise ReplayDivergence(
                f"divergence at step '{self.step_of()}': role '{role}' made call #{index} "
                f"({op}) but the recorded session has no such call",
                step=self.step_of(), role=role, call_index=index, detail="extra call")
        if rec is not None and rec.request_hash != digest:
            what = _first_difference(rec, op, params, inputs)
            raise ReplayDivergence(
                f"divergence at step '{self.step_of()}': role '{role}' call #{index} differs "
                f"from the record ({what})", step=self.step_of(), role=role, call_index=index,
                detail=what)

    def _serve(self, role: str, op: str, index: int, spec: ModelSpec, params: dict[str, Any],
               inputs: dict[str, Any], seed: int, digest: str,
               blobs: dict[str, bytes]) -> CallRecord:
        rec = self.records.get((role, index))
        if rec is None:
            if self.fallback is None:
                raise ReplayDivergence(
                    f"divergence at step '{self.step_of()}': role '{role}' made call #{index} "
                    f"({op}) but the recorded session has no such call",
                    step=self.step_of(), role=role, call_index=index, detail="extra call")
            return self.fallback._serve(role, op, index, spec, params, inputs, seed, digest,
                                        blobs)
        if rec.request_hash != digest:
            what = _first_difference(rec, op, params, inputs)
            raise ReplayDivergence(
                f"divergence at step '{self.step_of()}': role '{role}' call #{index} differs "
                f"from the record ({what})", step=self.step_of(), role=role, call_index=index,
                detail=what)
        self.served += 1
        return CallRecord(role=role, op=op, call_index=index, spec=rec.spec, params=params,
                          inputs=inputs, request_hash=digest, seed=seed, output=rec.output,
                          latency_s=0.0, queue_wait_s=0.0, batch_size=1, device="record",
                          blobs=dict(rec.blobs))


def _first_difference(rec: CallRecord, op: str, params: dict[str, Any],
                      inputs: dict[str, Any]) -> str:
    if rec.op != op:
        return f"operation {op} vs recorded {rec.op}"
    for name, now, then in (("params", params, rec.params), ("inputs", inputs, rec.inputs)):
        for key in sorted(set(now) | set(then)):
            if now.get(key) != then.get(key):
                shown = json.dumps(now.get(key), default=str)[:80]
                was = json.dumps(then.get(key), default=str)[:80]
                return f"{name}.{key}: {shown} vs recorded {was}"
    return "model identity or seed"


class _RoleConstituents:
    """A composite's constituents as roles ``ROLE.PART`` of one :class:`Models`
    (``models/composite.py`` Constituents): recorded calls, handoffs as decisions."""

    def __init__(self, models: Models, role: str) -> None:
        self.models, self.role = models, role

    def generate(self, part: str, prompt: Prompt, params: GenerateParams) -> Generation:
        rec = self.models._call(f"{self.role}.{part}", "generate",
                                params.model_dump(mode="json"), {"prompt": prompt})
        return Generation.from_json(rec.output)

    def score(self, part: str, prompt: Prompt, options: Sequence[str]) -> list[float]:
        rec = self.models._call(f"{self.role}.{part}", "score", {},
                                {"prompt": prompt, "options": list(options)})
        return [float(x) for x in rec.output]

    def call_index(self, part: str) -> int | None:
        count = self.models.counters().get(f"{self.role}.{part}")
        return None if count is None else count - 1

    def handoff(self, kind: str, *, options: list[dict[str, Any]], chosen: dict[str, Any],
                uncertainty: float | None, rationale: str) -> None:
        decision = getattr(self.models.sink, "decision", None)
        if decision is not None:  # a recorder; NullSink records nothing
            decision(kind, options=options, chosen={"role": self.role, **chosen},
                     uncertainty=uncertainty, rationale=rationale)
