"""Studies on the Ray executor give the same sessions as on threads, resumable, replayable."""

from __future__ import annotations

import pytest
from tinmen.graphs.replay import replay_session
from tinmen.graphs.shopper import study_plan
from tinmen.graphs.shopper_report import cells
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store, orm

from tinmen.errors import ConfigError

AGENTS = ("scripted:info-sensitive", "scripted:rigid")


def _plan():
    return study_plan(["car"], {n: resolve_spec(n) for n in AGENTS}, [0.2], reps=2, seed=5)


def _cells(store, sid):
    keys = ("scenario", "condition", "model", "n", "parsed", "overrides")
    return sorted(tuple(r[k] for k in keys) for r in cells(store, sid))


def test_ray_executor_runs_the_same_study_as_threads(tmp_path, any_db_url):
    """Threads on SQLite are the reference; the Ray workers write to SQLite or PostgreSQL."""
    pytest.importorskip("ray")
    threads, on_ray = Store.open(f"sqlite:///{tmp_path}/threads.db"), Store.open(any_db_url)
    a = run_study(threads, _plan(), pool=ModelPool(), progress=False)
    b = run_study(on_ray, _plan(), workers=2, progress=False, executor="ray")
    assert a.ran == b.ran == 16 and not b.failed
    # one copy of each model on the cluster: the two workers called one pool actor
    assert sorted(m["name"] for m in b.models_loaded) == sorted(AGENTS)
    calls = {m["name"]: m["calls"] for m in a.models_loaded}
    assert {m["name"]: m["calls"] for m in b.models_loaded} == calls, b.models_loaded
    assert _cells(on_ray, b.study_id) == _cells(threads, a.study_id)
    with on_ray.unit_of_work() as uow:
        rows = uow.session.query(orm.Session).filter_by(study_id=b.study_id).all()
        assert {r.status for r in rows} == {"completed"} and len(rows) == 16
        seeds = sorted(r.seed for r in rows)
    with threads.unit_of_work() as uow:
        assert seeds == sorted(r.seed for r in uow.session.query(orm.Session).all())
    assert replay_session(on_ray, rows[0].id).identical
    again = run_study(on_ray, _plan(), study_id=b.study_id, progress=False, executor="ray")
    assert (again.ran, again.skipped) == (0, 16)  # resumed: nothing repeated


def test_a_threaded_study_resumes_and_replays(any_store):
    """Four threads writing one study at once, on SQLite and on PostgreSQL."""
    first = run_study(any_store, _plan(), pool=ModelPool(), workers=4, progress=False)
    assert first.ran == 16 and not first.failed
    again = run_study(any_store, _plan(), study_id=first.study_id, progress=False)
    assert (again.ran, again.skipped) == (0, 16)
    with any_store.unit_of_work() as uow:
        rows = uow.sessions.list(study_id=first.study_id)
        assert len(rows) == 16 and {r.status for r in rows} == {"completed"}
        assert len({(r.condition_id, r.rep) for r in rows}) == 16
    assert replay_session(any_store, rows[0].id).identical


def test_executor_errors_are_clear(store):
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        run_study(store, _plan(), progress=False, executor="dask")
    memory = Store.open("sqlite://")
    with pytest.raises(ConfigError, match="in-memory SQLite store cannot be shared"):
        run_study(memory, _plan(), progress=False, executor="ray")


def test_a_cli_study_on_ray(db_url, capsys):
    """`--executor ray` through the CLI: the same JSON cells as the paper's shape."""
    import json

    from tinmen.cli import main

    pytest.importorskip("ray")
    code = main(["shopper", "study", "--scenario", "car", "-m", "agent=scripted:info-sensitive",
                 "--reps", "2", "--workers", "2", "--executor", "ray", "--db", db_url,
                 "--json"])
    assert code == 0
    cells_ = {c["condition"]: c for c in json.loads(capsys.readouterr().out)["cells"]}
    assert {k: (c["n"], c["override_rate"]) for k, c in cells_.items()} == {
        "both": (2, 1.0), "principal-only": (2, 1.0), "customer-only": (2, 0.0),
        "neither": (2, 0.0)}
    assert main(["shopper", "study", "--executor", "dask", "--db", db_url]) == 2
    assert "unknown executor 'dask'" in capsys.readouterr().err
