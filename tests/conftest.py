"""Shared fixtures. Torch runs single-threaded: on 2 cores, parallel test processes with
default thread counts run tiny models 18-100x slower."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/tinmen.db"


@pytest.fixture
def store(db_url):
    from tinmen.storage import Store

    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Packaged-model conversions are cached per test session, never in the user's home."""
    cache = os.environ.get("TINMEN_TEST_CACHE") or str(tmp_path_factory.getbasetemp() /
                                                         "tinmen-cache")
    monkeypatch.setenv("TINMEN_CACHE", cache)
    monkeypatch.setenv("TINMEN_OUT", str(tmp_path_factory.getbasetemp() / "tinmen-out"))
