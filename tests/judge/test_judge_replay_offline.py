"""A judge-tiny session — its seed model and DPO updates trained by recorded ``train``
calls — replays identically with no model package, no training and an empty cache; a fork
after the training continues live from the stored checkpoint without retraining."""

from __future__ import annotations

import pytest
from offline import replay_offline
from sqlalchemy import func, select
from tinmen.graphs.judge import AGENT, TRAINER
from tinmen.graphs.replay import fork_session
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings
from tinmen.storage import orm

SMALL = {"iterations": 1, "prompts": 2, "candidates": 2, "judge_samples": 1, "eval_items": 2,
         "judgeset_items": 1, "audit_items": 1, "sft_steps": 8, "max_new_tokens": 4,
         "variant": "scir"}


def _record(tmp_path_factory, name, options):
    """A judge session with ``options`` in a store of its own: (store, url, session id)."""
    from tinmen.storage import Store

    url = f"sqlite:///{tmp_path_factory.mktemp(name)}/j.db"
    store = Store.open(url)
    result = run_session(store, AGENT, {"seed": 5}, parse_bindings([], AGENT.roles),
                         pool=ModelPool(), options=options)
    return store, url, result.session_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    store, url, sid = _record(tmp_path_factory, "judge-offline", SMALL)
    yield store, url, sid
    store.close()


def test_training_is_recorded_as_calls_whose_checkpoints_are_artifacts(recorded):
    store, _, sid = recorded
    with store.unit_of_work() as uow:
        calls = [c for c in uow.calls.for_session(sid) if c.op == "train"]
        sizes = dict(uow.session.execute(select(orm.Artifact.sha256, orm.Artifact.size)).all())
        mimes = set(uow.session.scalars(select(orm.Artifact.mime)).all())
    assert [c.params["recipe"] for c in calls] == ["init", "sft", "dpo"]
    assert {c.spec["backend"] for c in calls} == {TRAINER.backend}
    dpo = calls[-1]
    assert dpo.inputs["checkpoints"] == sorted([calls[0].output["checkpoint_sha256"],
                                                calls[1].output["checkpoint_sha256"]])
    assert set(dpo.output["metrics"]) == {"dpo_loss", "consistency_penalty", "train_steps"}
    for call in calls:  # each checkpoint is one safetensors blob, stored once
        sha = call.output["checkpoint_sha256"]
        assert call.blobs[sha][8:9] == b"{" and sizes[sha] == call.output["bytes"]
    assert mimes == {"application/octet-stream"}


def test_a_judge_session_replays_offline_without_training(recorded, tmp_path):
    _, url, sid = recorded
    report = replay_offline(url, sid, tmp_path / "empty-cache")
    assert report["identical"], report
    assert report["cache_files"] == []  # no checkpoint written, no weights loaded


def test_a_fork_after_the_seed_continues_from_the_stored_checkpoint(recorded, tmp_path,
                                                                    monkeypatch):
    store, _, sid = recorded
    monkeypatch.setenv("TINMEN_CACHE", str(tmp_path / "fresh-cache"))  # nothing on disk
    forked = fork_session(store, sid, 1, {}, pool=ModelPool(), seed=11)  # live from evaluate
    assert forked.status == "completed"
    with store.unit_of_work() as uow:
        recipes = uow.session.scalars(select(orm.ModelCall.params).where(
            orm.ModelCall.session_id == forked.session_id, orm.ModelCall.op == "train",
            orm.ModelCall.device != "record")).all()
        sft = next(r.output["checkpoint_sha256"] for r in uow.calls.for_session(sid)
                   if r.op == "train" and r.params["recipe"] == "sft")
        n_calls = uow.session.scalar(select(func.count()).select_from(orm.ModelCall).where(
            orm.ModelCall.session_id == forked.session_id))
    assert [p["recipe"] for p in recipes] == ["dpo"] and n_calls > 3  # only DPO trained
    written = {p.name for p in (tmp_path / "fresh-cache" / "judge").iterdir()}
    assert not any(name.startswith("sft-") for name in written)  # the seed was not retrained
    assert sft[:16] in written  # the seed model was written out from the store


# --------------------------------------------------------------------------- paper prompt
PAPER = {**SMALL, "judge_prompt": "paper", "judge_samples": 2, "verdict_tokens": 24}


@pytest.fixture(scope="module")
def recorded_paper(tmp_path_factory):
    store, url, sid = _record(tmp_path_factory, "judge-paper", PAPER)
    yield store, url, sid
    store.close()


def test_paper_prompt_verdicts_are_stored_and_unreadable_scores_counted(recorded_paper):
    store, _, sid = recorded_paper
    with store.unit_of_work() as uow:
        rows = uow.session.scalars(select(orm.Prediction).where(
            orm.Prediction.session_id == sid, orm.Prediction.model == "candidate")).all()
        failures = uow.session.scalars(select(orm.Metric).where(
            orm.Metric.session_id == sid, orm.Metric.name == "verdict_parse_failures")).one()
        gens = [c for c in uow.calls.for_session(sid) if c.op == "generate"
                and "Justify:" in str(c.inputs["prompt"])]
    from tinmen.agents.judge.rubric import parse_score

    assert rows and all(len(r.meta["verdicts"]) == 2 for r in rows)
    for r in rows:  # an 8-step seed model writes junk: counted, never a crash
        assert r.meta["unparsed"] == sum(parse_score(v) is None for v in r.meta["verdicts"])
        assert (r.predicted is None) == (r.meta["unparsed"] == 2)
    assert failures.value == sum(r.meta["unparsed"] for r in rows)
    assert failures.meta["verdicts"] == 2 * len(rows)
    assert {c.params["max_new_tokens"] for c in gens} == {24}  # justification room


def test_a_paper_prompt_session_replays_offline(recorded_paper, tmp_path):
    _, url, sid = recorded_paper
    report = replay_offline(url, sid, tmp_path / "empty-cache")
    assert report["identical"], report
    assert report["cache_files"] == []
