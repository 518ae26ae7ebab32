"""Composite specs (models/composite.py): Nudging and cascades over scripted constituents
whose log-probs are constructed, so every handoff point is known in advance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from offline import replay_offline
from tinmen.graphs.example import AGENT
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.models.client import LiveModels
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec

from tinmen.analysis import handoffs
from tinmen.cli import main

POLICIES = Path(__file__).with_name("collab_policies.py")
QUESTION = [{"role": "user", "content": "what is six times seven?"}]
# base: "the answer is 42 because six times seven", unsure (p < 0.3) at "42" and "because"
BASE = {"backend": "scripted", "source": f"{POLICIES}:BaseAnswer",
        "options": {"continues": True, "word_probs": {"42": 0.2, "because": 0.25}}}
# aligned: "the answer is forty-two as I computed"
ALIGNED = {"backend": "scripted", "source": f"{POLICIES}:AlignedAnswer",
           "options": {"continues": True}}


def nudged(gamma: float = 0.3, **extra: object) -> str:
    return json.dumps({"backend": "nudged", "options": {"base": BASE, "aligned": ALIGNED,
                                                        "gamma": gamma, **extra}})


def cascade(rule: str, threshold: float, **extra: object) -> str:
    return json.dumps({"backend": "cascade", "options": {
        "small": BASE, "large": ALIGNED, "rule": rule, "threshold": threshold, **extra}})


class ListSink:
    """Collects what a recorder would store: model calls and decisions."""

    def __init__(self) -> None:
        self.calls: list = []
        self.decisions: list[tuple[str, dict]] = []

    def model_call(self, record) -> None:
        self.calls.append(record)

    def decision(self, kind: str, **row) -> None:
        self.decisions.append((kind, row))


def models_for(spec_text: str) -> tuple[LiveModels, ListSink]:
    sink = ListSink()
    return LiveModels(ModelPool(), {"agent": resolve_spec(spec_text)}, sink=sink), sink


def test_nudged_hands_off_exactly_where_the_base_top1_is_below_gamma():
    models, sink = models_for(nudged(0.3))
    gen = models.generate("agent", QUESTION)
    assert gen.text == "the answer is forty-two as six times seven"
    chosen = [row["chosen"] for kind, row in sink.decisions if kind == "handoff"]
    assert [(c["span"], c["base_token"], c["base_top1"], c["position"]) for c in chosen] == [
        ("forty-two", "42", 0.2, 3), ("as", "because", 0.25, 4)]
    roles = [(r.role, r.call_index) for r in sink.calls]
    assert roles == [("agent.base", 0), ("agent.aligned", 0), ("agent.base", 1),
                     ("agent.aligned", 1), ("agent.base", 2), ("agent", 0)]
    assert sink.calls[-1].device == "composite"
    assert sink.calls[-1].output["composite"]["writers"] == [
        "base", "base", "base", "aligned", "aligned", "base", "base", "base"]


def test_a_lower_gamma_nudges_only_the_less_sure_token():
    models, sink = models_for(nudged(0.22))
    assert models.generate("agent", QUESTION).text == \
        "the answer is forty-two because six times seven"
    assert [row["chosen"]["base_top1"] for _, row in sink.decisions] == [0.2]


def test_nudged_with_a_confident_base_is_the_base_alone():
    models, sink = models_for(nudged(0.1))
    assert models.generate("agent", QUESTION).text == "the answer is 42 because six times seven"
    assert sink.decisions == [] and [r.role for r in sink.calls] == ["agent.base", "agent"]


def test_nudged_respects_max_new_tokens():
    models, _ = models_for(nudged(0.3))
    gen = models.generate("agent", QUESTION, max_new_tokens=4)
    assert gen.text == "the answer is forty-two" and len(gen.tokens) == 4
    assert gen.finish_reason == "length"


@pytest.mark.parametrize(("rule", "threshold", "writer"), [
    # per-token NLL: six words at -log 0.9 = 0.105, then 1.609 and 1.386
    ("seq-nll", 3.0, "large"),        # 3.63 > 3.0
    ("seq-nll", 4.0, "small"),
    ("chow-quantile", 0.8, "large"),  # q80 of the per-token NLL = 0.874
    ("chow-quantile", 1.0, "small"),
    ("top1-min", 0.5, "large"),       # 1 - 0.2
])
def test_cascade_defers_by_its_rule(rule, threshold, writer):
    models, sink = models_for(cascade(rule, threshold))
    gen = models.generate("agent", QUESTION)
    expected = {"small": "the answer is 42 because six times seven",
                "large": "the answer is forty-two as I computed"}[writer]
    assert gen.text == expected
    [(kind, row)] = sink.decisions
    assert kind == "deferral" and row["chosen"]["writer"] == writer
    assert [r.role for r in sink.calls] == (["agent.small", "agent.large", "agent"]
                                            if writer == "large" else ["agent.small", "agent"])


def test_cascade_chow_quantile_is_not_length_biased():
    """Twice the confident text doubles the sequence NLL but leaves the quantile alone."""
    from tinmen.models.composite import deferral_score
    from tinmen.models.protocols import Generation

    one = Generation("x", ("a",) * 8, (math.log(0.9),) * 8, (math.log(0.9),) * 8)
    two = Generation("x", ("a",) * 16, (math.log(0.9),) * 16, (math.log(0.9),) * 16)
    assert deferral_score("seq-nll", two) == pytest.approx(2 * deferral_score("seq-nll", one))
    assert deferral_score("chow-quantile", two) == pytest.approx(
        deferral_score("chow-quantile", one))


def test_a_composite_loaded_by_the_pool_serves_like_any_model():
    pool = ModelPool()
    spec = resolve_spec(nudged(0.3))
    out, stats, _ = pool.serve(spec, "generate", {"max_new_tokens": 64}, {"prompt": QUESTION}, 1)
    assert out["text"] == "the answer is forty-two as six times seven"
    assert {e["backend"] for e in pool.loaded()} == {"nudged", "scripted"}


def test_a_session_records_every_handoff_and_replays_it_without_weights(
        store, db_url, tmp_path):
    spec = resolve_spec(nudged(0.3))
    result = run_session(store, AGENT, {"request": "what is six times seven?"},
                         {"agent": spec}, pool=ModelPool())
    frame = handoffs(store, session=result.session_id)
    assert list(frame["span"]) == ["forty-two", "as"]
    assert list(frame["base_top1"]) == [0.2, 0.25]
    assert set(frame["writer"]) == {"aligned"} and set(frame["role"]) == {"agent"}
    assert replay_session(store, result.session_id).identical
    report = replay_offline(db_url, result.session_id, tmp_path / "empty-cache")
    assert report["identical"], report


def test_a_cascade_session_replays_identically_without_weights(store, db_url, tmp_path):
    result = run_session(store, AGENT, {"request": "what is six times seven?"},
                         {"agent": resolve_spec(cascade("chow-quantile", 0.8))},
                         pool=ModelPool())
    frame = handoffs(store, session=result.session_id)
    assert "large" in set(frame["writer"])
    report = replay_offline(db_url, result.session_id, tmp_path / "empty-cache")
    assert report["identical"], report


@pytest.mark.parametrize(("spec", "needle"), [
    (nudged(1.5), "gamma"),
    (nudged(0.0), "gamma"),
    (json.dumps({"backend": "nudged", "options": {"base": "gpt-17", "aligned": ALIGNED}}),
     "unknown model 'gpt-17'"),
    (cascade("vibes", 1.0), "rule"),
    (nudged(0.3, templates={"base": "Q: {question}"}), "template of 'base'"),
    (json.dumps({"backend": "nudged", "options": {
        "base": {"backend": "sentence-embedder", "source": "x"}, "aligned": ALIGNED}}),
     "no top-1 log-probs"),
])
def test_bad_composite_specs_are_one_line_exit_2_and_write_nothing(capsys, tmp_path, spec,
                                                                    needle):
    db = tmp_path / "t.db"
    code = main(["example", "--db", f"sqlite:///{db}", "-m", f"agent={spec}"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not db.exists()


def test_the_handoff_query_and_summary_are_empty_for_sessions_without_composites(store):
    from tinmen.graphs.handoffs import handoff_summary

    run_session(store, AGENT, {"request": "hi"}, {"agent": resolve_spec("scripted:echo")},
                pool=ModelPool())
    assert handoffs(store).empty and handoff_summary(store) == ""


def test_spec_files_bind_a_role_to_a_nudged_spec(tmp_path):
    path = tmp_path / "nudged.toml"
    path.write_text('name = "nudged-demo"\nbackend = "nudged"\n[options]\n'
                    'gamma = 0.3\nbase = "scripted:echo"\naligned = "scripted:echo"\n')
    spec = resolve_spec(str(path))
    assert spec.options["base"]["backend"] == "scripted"  # resolved to a full spec


def test_a_fork_with_another_gamma_replays_the_prefix_and_nudges_anew(store):
    from tinmen.graphs.replay import fork_session

    first = run_session(store, AGENT, {"request": "what is six times seven?"},
                        {"agent": resolve_spec(nudged(0.3))}, pool=ModelPool())
    fork = fork_session(store, first.session_id, 2, {"agent": resolve_spec(nudged(0.22))},
                        pool=ModelPool())
    assert list(handoffs(store, session=first.session_id)["base_top1"]) == [0.2, 0.25]
    assert list(handoffs(store, session=fork.session_id)["base_top1"]) == [0.2]


def test_templates_render_chat_messages_for_a_continuing_model():
    from tinmen.models.composite import render

    assert render(QUESTION, "chatml") == ("<|im_start|>user\nwhat is six times seven?"
                                          "<|im_end|>\n<|im_start|>assistant\n")
    assert render(QUESTION, "plain") == "user: what is six times seven?\nassistant:"
    assert render(QUESTION, "Q: {prompt}\nA:") == "Q: what is six times seven?\nA:"
    assert render("the cat", "plain") == "the cat"
