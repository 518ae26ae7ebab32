"""A T2I session (pictures every turn, scored) and a shopper session replay identically in a
process where no model package can be imported and the model cache is empty: every model
computation they make goes through ctx.models and is served from the store."""

from __future__ import annotations

from offline import replay_offline
from tinmen.agents.t2i.scenes import synthetic_items
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store


def _assert_identical(report, original):
    assert report["original"] == original and report["identical"], report
    assert report["divergence"] is None and report["calls_served"] > 0
    assert report["cache_files"] == []  # nothing was loaded or converted


def test_t2i_session_with_images_each_replays_with_no_model_loadable(db_url, tmp_path):
    store = Store.open(db_url)
    bindings = {"parser": resolve_spec("scripted:t2i"),
                "questioner": resolve_spec("scripted:t2i"),
                "t2i": resolve_spec("shapes-renderer"), "scorer": resolve_spec("shapes-clip")}
    item = synthetic_items(3, seed=2)[0]
    result = run_session(store, "t2i", item.model_dump(mode="json"), bindings,
                         pool=ModelPool(), options={"max_turns": 3, "images": "each"})
    turns = result.output["turns"]
    assert result.output["image"] and all("image_text_alignment" in t for t in turns)
    with store.unit_of_work() as uow:
        roles = {c.role for c in uow.calls.for_session(result.session_id)}
    assert {"t2i", "scorer"} <= roles  # drawing and scoring the pictures are recorded calls
    _assert_identical(replay_offline(db_url, result.session_id, tmp_path / "cache"),
                      result.session_id)


def test_shopper_session_replays_with_no_model_loadable(db_url, tmp_path):
    store = Store.open(db_url)
    result = run_session(store, "shopper", {"scenario": "car", "info": "principal-only"},
                         {"agent": resolve_spec("scripted:info-sensitive")}, pool=ModelPool(),
                         options={"temperature": 0.2})
    assert result.output["item"] is not None
    _assert_identical(replay_offline(db_url, result.session_id, tmp_path / "cache"),
                      result.session_id)
