"""The vLLM servers of the served tests: ``.ci/vllm-server`` wrapped for pytest."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tinmen.models.spec import ModelSpec

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "vllm-server"
REQUIRE_ENV = "TINMEN_REQUIRE_VLLM"
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}  # GiB of KV cache: tiny models need little


def unavailable(message: str) -> None:
    """Fail in CI (``TINMEN_REQUIRE_VLLM=1``), skip elsewhere."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: CI needs the vLLM server)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **SERVER_ENV})


@dataclass
class VllmServer:
    """One server process of ``.ci/vllm-server``: a model dir served under a name."""

    model_dir: Path
    name: str
    port: int
    pooling: bool = False  # a pooling server: /v1/embeddings instead of generation

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start_command(self) -> list[str]:
        verb = "start-pooling" if self.pooling else "start"
        return ["bash", str(SCRIPT), verb, str(self.model_dir), self.name, str(self.port)]

    def start(self) -> None:
        done = subprocess.run(self.start_command(), capture_output=True, text=True,
                              timeout=900, env={**os.environ, **SERVER_ENV})
        if done.returncode != 0:
            pytest.fail(f"vLLM did not start on port {self.port}:\n{done.stdout}{done.stderr}",
                        pytrace=False)

    def stop(self) -> None:
        script("stop", str(self.port), timeout=120)

    def spec(self, name: str = "served", **options: object) -> ModelSpec:
        return ModelSpec(name=name, backend="openai-compatible", source=self.name,
                         options={"base_url": self.base_url, **options})
