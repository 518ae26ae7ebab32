"""Exact replay needs only the store: no model package importable, an empty model cache."""

from __future__ import annotations

from offline import replay_offline, run_offline
from tinmen.graphs.example import AGENT
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec


def test_a_session_replays_identically_with_no_model_package_and_an_empty_cache(
        store, db_url, tmp_path):
    result = run_session(store, AGENT, {"request": "boil an egg"},
                         {"agent": resolve_spec("scripted:echo")}, pool=ModelPool())
    report = replay_offline(db_url, result.session_id, tmp_path / "empty-cache")
    assert report["identical"], report
    assert report["calls_served"] == 2 and report["cache_files"] == []


def test_the_offline_harness_really_blocks_model_loading(db_url, tmp_path):
    """A live run that needs the packaged LLM fails there, so a passing replay means the
    replay loaded nothing."""
    proc = run_offline(["run", "example", "--input", '{"request": "hi"}', "--db", db_url],
                       tmp_path / "empty-cache")
    assert proc.returncode == 2 and "transformers" in proc.stderr, proc.stderr
