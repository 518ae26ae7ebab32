"""The shared pool: load once, LRU eviction under a budget, in-use models kept, batching."""

from __future__ import annotations

import threading

import pytest
from tinmen.models.client import CallRecord, LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings, resolve_spec
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError, MissingDependencyError, UnknownModelError


def spec(name: str, **kw) -> ModelSpec:
    """Distinct specs of one policy (the options differ, so the pool keys differ)."""
    source = "echo" if name.startswith("echo") else name
    return ModelSpec(name=name, backend="scripted", source=source,
                     options={"copy": name}, **kw)


class Sink:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.lock = threading.Lock()

    def model_call(self, record: CallRecord) -> None:
        with self.lock:
            self.records.append(record)


def test_one_instance_per_spec_across_threads_and_agents():
    pool = ModelPool()
    s = spec("echo-a")
    barrier = threading.Barrier(8)
    seen = []

    def agent(i: int) -> None:
        models = LiveModels(pool, {"agent": s}, seed=i)
        barrier.wait()
        seen.append(models.generate("agent", f"hello {i}").text)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(f"hello {i}" for i in range(8))
    assert pool.loads == {s.key: 1}
    assert pool.loaded()[0]["calls"] == 8


def test_equal_specs_under_different_names_share_one_instance():
    pool = ModelPool()
    with pool.acquire(spec("echo-a")) as first, pool.acquire(
            ModelSpec(name="alias", backend="scripted", source="echo",
                      options={"copy": "echo-a"})) as second:
        assert first is second


def test_lru_eviction_under_budget_spares_models_in_use():
    pool = ModelPool(budget_bytes=2500)  # room for two 1 KiB scripted models
    a, b, c = spec("echo-a"), spec("echo-b"), spec("echo-c")
    with pool.acquire(a):
        with pool.acquire(b):
            pass
        with pool.acquire(c):  # over budget: b is idle and least recent, a is in use
            names = {m["name"] for m in pool.loaded()}
    assert names == {"echo-a", "echo-c"}
    assert pool.evictions == [("echo-b", "unloaded")]
    with pool.acquire(b):  # reload of b evicts a, now idle and least recently used
        pass
    assert {m["name"] for m in pool.loaded()} == {"echo-c", "echo-b"}
    assert pool.loads[b.key] == 2


def test_nothing_evicted_when_everything_is_in_use():
    pool = ModelPool(budget_bytes=1500)
    with pool.acquire(spec("echo-a")), pool.acquire(spec("echo-b")):
        assert len(pool.loaded()) == 2
    assert pool.evictions == []


def test_concurrent_requests_are_batched():
    pool = ModelPool()
    s = spec("echo-a", max_batch_size=4, batch_wait_ms=2000)
    sink = Sink()
    barrier = threading.Barrier(4)

    def call(i: int) -> None:
        models = LiveModels(pool, {"agent": s}, sink=sink, seed=i)
        barrier.wait()
        models.generate("agent", f"p{i}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert [r.batch_size for r in sink.records] == [4, 4, 4, 4]
    assert all(r.queue_wait_s >= 0 for r in sink.records)
    assert sorted(r.output["text"] for r in sink.records) == ["p0", "p1", "p2", "p3"]


def test_unknown_names_give_clear_errors():
    with pytest.raises(UnknownModelError, match="registered name"):
        resolve_spec("gpt-17")
    with pytest.raises(UnknownModelError, match="unknown scripted policy"):
        with ModelPool().acquire(spec("nope")):
            pass
    with pytest.raises(UnknownModelError, match="unknown role 'critic'"):
        parse_bindings(["critic=smollm2"], {"agent": "smollm2"})
    with pytest.raises(UnknownModelError, match="ROLE=SPEC"):
        parse_bindings(["smollm2"], {"agent": "smollm2"})


def test_missing_dependency_names_the_install_command():
    with pytest.raises(MissingDependencyError, match="pip install tinmen_not_installed_pkg"):
        with ModelPool().acquire(ModelSpec(name="x",
                                           backend="tinmen_not_installed_pkg.backend:X")):
            pass
    with pytest.raises(UnknownModelError, match="has no attribute 'Nope'"):
        with ModelPool().acquire(ModelSpec(name="x",
                                           backend="tinmen.models.backends.scripted:Nope")):
            pass


def test_backends_and_policies_load_from_import_paths():
    """A user's own backend class or scripted policy needs no registration call."""
    s = ModelSpec(name="mine", backend="tinmen.models.backends.scripted:ScriptedBackend",
                  source="tinmen.models.backends.scripted:EchoPolicy")
    models = LiveModels(ModelPool(), {"agent": s})
    assert models.generate("agent", "hello there").text == "hello there"


def test_spec_validation_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "backend": "scripted", "max_batch_size": 0}')
    with pytest.raises(ConfigError, match="field 'max_batch_size'"):
        resolve_spec(str(bad))
    good = tmp_path / "good.toml"
    good.write_text('name = "mine"\nbackend = "scripted"\nsource = "echo"\n')
    assert resolve_spec(str(good)).name == "mine"


def test_unbound_role_and_missing_capability():
    models = LiveModels(ModelPool(), {"agent": spec("echo-a")})
    with pytest.raises(ConfigError, match="no model bound to role 'judge'"):
        models.generate("judge", "hi")
    with pytest.raises(ConfigError, match="cannot embed"):
        models.embed("agent", ["hi"])
