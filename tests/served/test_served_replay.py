"""A session recorded against a vLLM server replays identically with the server stopped,
and a server that is briefly unreachable costs retries that are recorded with the call."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from servers import SERVER_ENV
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import checkpointer_for, run_session
from tinmen.models.pool import ModelPool


def test_recorded_session_replays_with_the_server_stopped(store, fresh_server):
    # the session starts while the server is still coming up: its first request is
    # refused until then, and the retries it took are recorded with that call
    spec = fresh_server.spec(retries=400, backoff_s=0.5, timeout_s=60)
    starting = subprocess.Popen(fresh_server.start_command(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **SERVER_ENV})
    try:
        result = run_session(store, EXAMPLE, {"request": "How do I boil an egg?"},
                             {"agent": spec}, pool=ModelPool(),
                             checkpointer=checkpointer_for(store))
    finally:
        log, _ = starting.communicate(timeout=900)
    assert starting.returncode == 0, log
    fresh_server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{fresh_server.base_url}/models", timeout=5)

    report = replay_session(store, result.session_id)
    assert report.identical, report.differences
    with store.unit_of_work() as uow:
        records = uow.calls.for_session(result.session_id)
        assert report.calls_served == len(records) == 2  # classify's score, write's reply
        print(f"retries while the server came up: {[r.retries for r in records]}")
        assert records[0].retries > 0 and all(r.retries == 0 for r in records[1:])
        assert records[1].token_logprobs  # greedy log-probs, recorded and replayed
        replayed = {(b.subject, str(b.value)) for b in uow.records.beliefs(report.replay_id)}
        original = {(b.subject, str(b.value)) for b in uow.records.beliefs(result.session_id)}
    assert replayed == original
