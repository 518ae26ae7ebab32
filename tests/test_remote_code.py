"""A model folder's Python code never runs unless this run allows it.

The folder holds a real tiny Llama whose config.json maps AutoModelForCausalLM to a custom
``modeling_evil.py`` (auto_map) that creates a marker file when imported."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.models.spec import ModelSpec
from tinmen.storage import orm
from tiny_models import build_tiny_lm

from tinmen.cli import main
from tinmen.errors import ConfigError

EVIL_MODULE = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")
from transformers import LlamaForCausalLM


class EvilForCausalLM(LlamaForCausalLM):
    pass
'''


@pytest.fixture(scope="module")
def evil_folder(tmp_path_factory):
    folder = build_tiny_lm(tmp_path_factory.mktemp("evil-model"))
    marker = folder.parent / "marker"
    (folder / "modeling_evil.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def _spec(folder, **load) -> ModelSpec:
    return ModelSpec(name="evil", backend="transformers-lm", source=str(folder),
                     options={"load": load} if load else {})


def test_trust_remote_code_in_a_spec_is_refused(evil_folder):
    folder, marker = evil_folder
    with pytest.raises(ConfigError, match="trust_remote_code=True") as refused:
        with ModelPool().acquire(_spec(folder, trust_remote_code=True)):
            pass
    message = str(refused.value)
    assert "\n" not in message and "--trust-remote-code" in message
    assert not marker.exists()


@pytest.mark.parametrize("load", [{"use_safetensors": False}, {"weights_only": False},
                                  {"code_revision": "main"}])
def test_other_code_running_load_options_are_refused(evil_folder, load):
    folder, marker = evil_folder
    with pytest.raises(ConfigError, match=next(iter(load))):
        with ModelPool().acquire(_spec(folder, **load)):
            pass
    assert not marker.exists()


def test_the_same_folder_without_the_option_loads_its_builtin_class(evil_folder):
    folder, marker = evil_folder
    with ModelPool().acquire(_spec(folder)) as backend:
        assert type(backend.model).__name__ == "LlamaForCausalLM"
    assert not marker.exists()


def test_allowed_for_this_run_the_folder_code_does_run(evil_folder, tmp_path, monkeypatch):
    """Control: the refusal above is what stands between the spec and the code."""
    import transformers.dynamic_module_utils as dynamic

    folder, marker = evil_folder
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    try:
        with ModelPool(allow_remote_code=True).acquire(_spec(folder, trust_remote_code=True)):
            pass
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_fork_of_a_session_whose_stored_bindings_trust_remote_code_is_refused(
        evil_folder, store, db_url, capsys):
    folder, marker = evil_folder
    done = run_session(store, EXAMPLE, {"request": "boil an egg"},
                       {"agent": resolve_spec("scripted:echo")}, pool=ModelPool())
    stored = {"agent": _spec(folder, trust_remote_code=True).model_dump(mode="json")}
    with store.unit_of_work() as uow:  # as a shared store or an edited record would hold it
        uow.session.execute(update(orm.Session).where(orm.Session.id == done.session_id)
                            .values(bindings=stored))
        uow.commit()
    code = main(["fork", done.session_id, "--at-step", "0", "--db", db_url])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "trust_remote_code" in errors[0], errors
    assert not marker.exists()
