"""A DesignBench session (open vocabulary, LLM user, no ground-truth scene) replays
identically in a process where no model package can be imported and the model cache is
empty: its JSON proposal, every slot score and every user answer are served from the
store."""

from __future__ import annotations

import json

from offline import replay_offline
from tinmen.agents.t2i.designbench import load_designbench
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store

ITEM = {"0": {"index": 0, "short_description": "A white cake and a vase with stems on a table.",
              "long_description": "A white cake on a round stand; a tall gray vase with "
                                  "white stems stands to the right of the cake."}}


def test_designbench_open_vocabulary_session_replays_with_no_model_loadable(db_url, tmp_path):
    path = tmp_path / "designbench.json"
    path.write_text(json.dumps(ITEM))
    item = load_designbench(path)[0]
    store = Store.open(db_url)
    spec = resolve_spec("scripted:t2i")
    bindings = {"parser": spec, "questioner": spec, "user": spec,
                "t2i": resolve_spec("shapes-renderer")}
    result = run_session(store, "t2i", item.model_dump(mode="json"), bindings,
                         pool=ModelPool(), options={"max_turns": 3, "user": "llm",
                                                    "vocabulary": "open"})
    assert result.status == "completed" and result.output["questions"]
    with store.unit_of_work() as uow:
        ops = {(c.role, c.op) for c in uow.calls.for_session(result.session_id)}
    assert {("parser", "generate"), ("parser", "score"), ("user", "score")} <= ops
    report = replay_offline(db_url, result.session_id, tmp_path / "cache")
    assert report["original"] == result.session_id and report["identical"], report
    assert report["divergence"] is None and report["calls_served"] > 0
    assert report["cache_files"] == []  # nothing was loaded or converted
