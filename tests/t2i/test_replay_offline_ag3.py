"""A session of the paper's Ag3 policy with the paper's free-text LLM user (and the
reference stop rule) replays identically through `tinmen replay` in a process where no model
package can be imported and the model cache is empty: the questions Ag3 writes, the user's
free-text answers and the parser's reading of them are all served from the store."""

from __future__ import annotations

from offline import replay_offline
from tinmen.agents.t2i.scenes import synthetic_items
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store


def test_ag3_with_the_free_text_user_replays_with_no_model_loadable(db_url, tmp_path):
    store = Store.open(db_url)
    scripted = resolve_spec("scripted:t2i")
    bindings = {"parser": scripted, "questioner": scripted, "user": scripted,
                "t2i": resolve_spec("shapes-renderer")}
    item = synthetic_items(3, seed=2)[0]
    result = run_session(store, "t2i", item.model_dump(mode="json"), bindings,
                         pool=ModelPool(), options={"policy": "ag3", "user": "llm-free",
                                                    "stop_rule": "reference",
                                                    "max_turns": 3})
    with store.unit_of_work() as uow:
        roles = [c.role for c in uow.calls.for_session(result.session_id)]
    assert roles.count("questioner") == 3 and roles.count("user") == 3
    report = replay_offline(db_url, result.session_id, tmp_path / "cache")
    assert report["original"] == result.session_id and report["identical"], report
    assert report["divergence"] is None and report["calls_served"] == len(roles)
    assert report["cache_files"] == []  # nothing was loaded or converted
