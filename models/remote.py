"""One model copy per cluster: a :class:`ModelPool` inside a Ray actor, and the proxy that
session tasks on any worker call instead of loading their own copy.

The actor is threaded (``max_concurrency``), so concurrent requests from different workers
meet inside one pool and its batcher merges them exactly as threads of one process do.
The proxy offers the one method sessions use (``serve``); it holds only the actor handle, so
it pickles into every Ray task. Served models (``openai-compatible``) need no actor at all,
but go through it unchanged: the actor just forwards their requests.
"""

from __future__ import annotations

from typing import Any

from tinmen.models.pool import ModelPool
from tinmen.models.protocols import CallStats
from tinmen.models.spec import ModelSpec


class PoolActor:
    """The body of the Ray actor: a ModelPool, created once inside the actor's process."""

    def __init__(self, budget_bytes: Any = None) -> None:
        self.pool = ModelPool(budget_bytes)

    def serve(self, spec: dict[str, Any], op: str, params: dict[str, Any],
              inputs: dict[str, Any], seed: int, blobs: dict[str, bytes]
              ) -> tuple[Any, CallStats, dict[str, bytes]]:
        return self.pool.serve(ModelSpec.model_validate(spec), op, params, inputs, seed, blobs)

    def loaded(self) -> list[dict[str, Any]]:
        return self.pool.loaded()

    def rss_bytes(self) -> int:
        """The actor process's resident memory (what holding the models costs)."""
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RemotePool:
    """What a session task uses as its pool: every ``serve`` runs in the shared actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def serve(self, spec: ModelSpec, op: str, params: dict[str, Any], inputs: dict[str, Any],
              seed: int, blobs: dict[str, bytes] | None = None
              ) -> tuple[Any, CallStats, dict[str, bytes]]:
        import ray

        return ray.get(self.actor.serve.remote(spec.model_dump(mode="json"), op, params,
                                               inputs, seed, blobs or {}))

    def loaded(self) -> list[dict[str, Any]]:
        import ray

        return ray.get(self.actor.loaded.remote())


def start_pool_actor(concurrency: int, budget_bytes: Any = None) -> RemotePool:
    """A pool actor on the cluster, taking ``concurrency`` requests at once."""
    import ray

    # no CPU reserved: the tasks that call it hold the CPUs; it computes on their behalf
    actor = ray.remote(num_cpus=0)(PoolActor).options(
        max_concurrency=max(2, concurrency)).remote(budget_bytes)
    return RemotePool(actor)
