"""DesignBench with an open vocabulary: the items loader and its refusals, open-vocabulary
parsing (entity names are prompt spans, slot distributions are the model's normalised
scores), the measures that need no ground truth, and the eval/report that records them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import Attribute, BeliefGraph, Entity
from tinmen.agents.t2i.designbench import (
    CHANGE_EPSILON,
    belief_change,
    load_designbench,
    weighted_entropy,
)
from tinmen.agents.t2i.open_vocabulary import open_schema, prompt_spans
from tinmen.agents.t2i.parsing import parse_prompt
from tinmen.agents.t2i.scripted import T2IPolicy
from tinmen.agents.t2i.vocabulary import OBJECTS, OPEN_VALUES
from tinmen.graphs.t2i_eval import evaluate_items, report
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store, analysis

from tinmen.cli import main
from tinmen.errors import ConfigError

# shared data lives beside the project root (../shared), wherever the checkout is
DESIGNBENCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "designbench" / \
    "prompts_and_classes.json"
needs_designbench = pytest.mark.skipif(not DESIGNBENCH.exists(),
                                       reason="DesignBench text not present")
DACHSHUND = "A long-haired dachshund runs on a sandy beach, carrying an orange ball in its mouth."


class SpanPolicy(T2IPolicy):
    """Proposes the first two names its open schema allows plus one it does not
    ("unicorn"); scores like ``scripted:t2i``. Bound as ``scripted:THIS_FILE:SpanPolicy``."""

    def respond(self, prompt, params, seed):
        schema = params.json_schema or {}
        if schema.get("title") != "t2i_open_proposal":
            return super().respond(prompt, params, seed)
        names = schema["properties"]["entities"]["items"]["properties"]["name"]["enum"]
        wanted = [n for n in names if n in ("dachshund", "sandy beach")] or names[:2]
        said = {"dachshund": [{"name": "color", "value": "sandy"},
                              {"name": "pose", "value": "running"}]}
        return json.dumps({"entities": [
            {"name": n, "type": "explicit", "attributes": said.get(n, [])} for n in wanted] + [
            {"name": "unicorn", "type": "explicit", "attributes": []}]})


def _models(source="t2i"):
    spec = resolve_spec(f"scripted:{source}")
    return LiveModels(ModelPool(), {"parser": spec, "questioner": spec, "user": spec})


def _write(tmp_path, text, name="bench.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- loader
def test_designbench_loader_reads_items_in_index_order_without_scenes(tmp_path):
    rows = {str(i): {"index": i, "short_description": f"a cat {i}",
                     "long_description": f"a grey cat number {i}\n\non a sofa", "link": "x"}
            for i in (10, 2, 0)}
    items = load_designbench(_write(tmp_path, json.dumps(rows)))
    assert [it.id for it in items] == ["designbench-0", "designbench-2", "designbench-10"]
    assert all(it.scene is None for it in items) and items[0].short == "a cat 0"
    assert [it.id for it in load_designbench(_write(tmp_path, json.dumps(rows)), limit=2)] \
        == ["designbench-0", "designbench-2"]


@needs_designbench
def test_the_shared_designbench_file_loads_all_thirty_prompts():
    items = load_designbench(DESIGNBENCH)
    assert len(items) == 30 and items[0].id == "designbench-0"
    assert all(it.short and it.long and it.scene is None for it in items)


@pytest.mark.parametrize("text, says", [
    ("{not json", "not a DesignBench JSON file"),
    ("[1, 2]", "expected a JSON object"),
    ('{"0": {"short_description": "a cat"}}', "item '0' needs non-empty"),
])
def test_bad_designbench_files_are_one_line_config_errors(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says) as info:
        load_designbench(_write(tmp_path, text))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["missing", "not-json", "both-sources"])
def test_eval_refuses_a_bad_designbench_path_in_one_line_and_writes_nothing(
        capsys, tmp_path, case):
    db = tmp_path / "store.db"
    path = {"missing": tmp_path / "nope.json",
            "not-json": _write(tmp_path, "{oops"),
            "both-sources": _write(tmp_path, "{oops")}[case]
    args = ["t2i", "eval", "--designbench", str(path), "--user", "llm", "--db",
            f"sqlite:///{db}", "-m", "parser=scripted:t2i", "-m", "user=scripted:t2i"]
    if case == "both-sources":
        args += ["--items", str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert ("both name the items" if case == "both-sources" else str(path.name)) in lines[0]
    assert not db.exists()  # refused before any store was opened


# --------------------------------------------------------------------------- open parsing
def test_prompt_spans_strip_value_words_and_stop_at_verbs():
    spans = prompt_spans("A white cake sits on a white cake stand, and a vase with stems.")
    assert spans[:4] == ["cake", "cake stand", "stand", "vase"]
    assert "white" not in spans and "sits" not in spans
    assert all(rules.is_span(s, "A white cake sits on a white cake stand, and a vase with "
                                "stems.") for s in spans)


def test_open_vocabulary_names_entities_by_prompt_spans_beyond_the_word_lists():
    models = _models(f"{Path(__file__).resolve()}:SpanPolicy")
    result = parse_prompt(models, "parser", DACHSHUND, vocabulary="open")
    names = [e.name for e in result.belief.entities if e.kind == "explicit"]
    assert names == ["dachshund", "sandy beach"]  # neither is in the object list
    assert not set(names) & set(OBJECTS)
    assert any("unicorn" in why for why in result.rejected)  # not a span: rejected
    color = result.belief.attribute("dachshund", "color")
    assert not color.pinned and "sandy" in color.candidates  # a span, but of the beach
    assert result.belief.attribute("dachshund", "pose") is not None  # a slot it named
    shapes = parse_prompt(models, "parser", DACHSHUND)
    assert [e.name for e in shapes.belief.entities if e.kind == "explicit"] == ["ball"]
    schema_names = open_schema(prompt_spans(DACHSHUND))["properties"]["entities"]["items"][
        "properties"]["name"]["enum"]
    assert "dachshund" in schema_names and "unicorn" not in schema_names


def test_open_slots_are_the_models_normalised_scores_and_stated_values_are_pinned():
    models = _models()
    prompt = "a white cake and a vase on a table"
    belief = parse_prompt(models, "parser", prompt, vocabulary="open").belief
    cake = belief.attribute("cake", "color")
    assert cake.pinned and cake.best == ("white", 1.0) and cake.source == "rule"
    vase = belief.attribute("vase", "color")
    assert not vase.pinned and vase.source == "model"
    assert tuple(vase.candidates) == OPEN_VALUES["color"]
    choice = models.choose("parser", prompts.slot_prompt(prompt, "vase", "color"),
                           [f" {v}" for v in OPEN_VALUES["color"]])
    total = sum(choice.probs)
    for value, p in zip(OPEN_VALUES["color"], choice.probs):
        assert vase.candidates[value] == pytest.approx(p / total)


def test_an_open_reparse_keeps_the_entities_rescores_and_pins_the_answer():
    models = _models(f"{Path(__file__).resolve()}:SpanPolicy")
    first = parse_prompt(models, "parser", DACHSHUND, vocabulary="open").belief
    merged = DACHSHUND + ", the dachshund is brown"
    again = parse_prompt(models, "parser", merged, [{"entity": "dachshund",
                                                     "attribute": "color", "value": "brown"}],
                         previous=first, vocabulary="open")
    assert [e.name for e in again.belief.entities] == [e.name for e in first.entities]
    assert again.failures == [] and again.belief.prompt == merged
    assert again.belief.attribute("dachshund", "color").best == ("brown", 1.0)
    change = belief_change(first, again.belief)
    assert change.changed and "dachshund.color" in change.moved


# --------------------------------------------------------------------------- measures
def _one(color, presence=1.0):
    return BeliefGraph(entities=(Entity(name="cat", probability=presence, attributes=(
        Attribute(name="color", candidates=color),
        Attribute(name="size", candidates={"small": 0.5, "large": 0.5}, importance=0.2))),))


def test_belief_change_counts_only_moves_beyond_epsilon():
    base = _one({"red": 0.5, "blue": 0.5})
    assert belief_change(base, base).changed is False
    small = _one({"red": 0.5 + CHANGE_EPSILON * 0.8, "blue": 0.5 - CHANGE_EPSILON * 0.8})
    moved = belief_change(base, small)
    assert not moved.changed and moved.max_tv == pytest.approx(CHANGE_EPSILON * 0.8)
    big = belief_change(base, _one({"red": 0.9, "blue": 0.1}))
    assert big.changed and big.moved == ("cat.color",) and big.max_tv == pytest.approx(0.4)
    assert not big.changed_beyond("cat.color") and big.changed_beyond("cat.size")
    new_value = belief_change(base, _one({"red": 0.5, "blue": 0.0, "green": 0.5}))
    assert new_value.changed and new_value.max_tv == pytest.approx(0.5)
    gone = belief_change(base, BeliefGraph())
    assert gone.changed and "cat.color" in gone.removed


def test_weighted_entropy_weights_each_slot_by_importance_and_presence():
    belief = _one({"red": 0.5, "blue": 0.5}, presence=0.5)
    h = math.log(2)
    # slots: color 1 × 1 × 0.5 × h, size 1 × 0.2 × 0.5 × h; presence: importance 1 × h
    assert weighted_entropy(belief) == pytest.approx(0.5 * h + 0.1 * h + h)
    assert belief.total_entropy == pytest.approx(3 * h)


# --------------------------------------------------------------------------- eval + report
def _bindings():
    spec = resolve_spec("scripted:t2i")
    return {"parser": spec, "questioner": spec, "user": spec,
            "t2i": resolve_spec("shapes-renderer")}


DB_ITEMS = {"0": {"index": 0, "short_description": "A cat sits on a sofa next to a lamp.",
                  "long_description": "A gray cat sits on a red sofa; the lamp is on the left."},
            "1": {"index": 1, "short_description": "A vase of tulips on a table.",
                  "long_description": "A blue glass vase of tulips on a wooden table."}}


def test_designbench_eval_records_per_turn_measures_and_names_what_it_skipped(
        db_url, tmp_path):
    store = Store.open(db_url)
    items = load_designbench(_write(tmp_path, json.dumps(DB_ITEMS)))
    summary = evaluate_items(store, items, _bindings(), policy="attribute", user="llm",
                             max_turns=3, progress=False, vocabulary="open")
    assert set(summary["skipped"]) >= {"fact_coverage", "belief_nll", "questions_to_coverage"}
    assert all("fact_coverage" not in t for t in summary["turns"])
    assert all("belief_entropy_weighted" in t and "belief_entropy" in t
               for t in summary["turns"])
    frame = analysis.metrics(store, study=summary["study_id"])
    answers = frame[frame["name"] == "answer_changed_belief"]
    asked = frame[frame["name"] == "questions"].groupby("session_id")["value"].max()
    assert len(answers) == summary["answers"]["count"] == int(asked.sum()) > 0
    assert summary["answers"]["changed_share"] == pytest.approx(answers["value"].mean())
    with store.unit_of_work() as uow:  # one JSON proposal per session; re-parses re-score
        for sid in summary["session_ids"]:
            ops = [c.op for c in uow.calls.for_session(sid) if c.role == "parser"]
            assert ops.count("generate") == 1 and ops.count("score") > 3
    out = report(store, summary["study_id"], tmp_path / "report")
    text = Path(out["table"]).read_text()
    assert "skipped (no ground-truth scene)" in text and "weighted entropy" in text
    assert "fact coverage" not in text.split("skipped")[0]  # no column of blanks or zeros
    assert [Path(p).name for p in out["plots"]] == [
        f"t2i-study-{summary['study_id']}-belief.png"]
    assert all(Path(p).stat().st_size > 0 for p in out["plots"])


@pytest.mark.parametrize("user", ["llm", "stochastic"])
def test_answer_changed_belief_agrees_with_the_recorded_belief_graphs(db_url, tmp_path,
                                                                      user):
    store = Store.open(db_url)
    items = load_designbench(_write(tmp_path, json.dumps(DB_ITEMS)))
    summary = evaluate_items(store, items, _bindings(), policy="attribute", user=user,
                             max_turns=3, progress=False, vocabulary="open")
    graphs = analysis.beliefs(store, study=summary["study_id"], subject="belief_graph")
    metrics = analysis.metrics(store, study=summary["study_id"], name="answer_changed_belief")
    for sid, rows in graphs.groupby("session_id"):
        versions = [BeliefGraph.from_json(_json(v)) for v in rows["value"]]
        expected = [float(belief_change(a, b).changed) for a, b in zip(versions, versions[1:])]
        assert metrics[metrics["session_id"] == sid]["value"].tolist() == expected


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
