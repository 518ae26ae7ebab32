"""The agent's loop as one pure function, node for node what the LangGraph graph runs:

    parse → evaluate → check_stop ─stop→ done
                          └continue→ select → ask → update (fact, merge, pins) → parse

:func:`simulate` drives one item with a parse function, a policy and a (simulated) user;
:func:`run_benchmark` averages the per-turn curves over items. Both need no store, so the
coverage claims can be tested (and benchmarked) without a session.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.t2i.answers import read_answer
from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.facts import PRESENT, UNSPECIFIED, Fact, merge_fact
from tinmen.agents.t2i.metrics import (
    Matcher,
    argmax_fact_coverage,
    belief_nll,
    fact_coverage,
    questions_to_reach,
)
from tinmen.agents.t2i.parsing import ParseResult, Pin, parse_prompt
from tinmen.agents.t2i.policies import Action, Policy, should_stop
from tinmen.agents.t2i.scenes import Item, Scene
from tinmen.agents.t2i.users import Answer, User, resolve_free

ParseFn = Callable[[str, list[Fact], BeliefGraph | None], ParseResult]
AnswerFn = Callable[[Action, Answer, BeliefGraph], list[Fact]]


def make_parser(models: Any, role: str = "parser", propose_json: bool = True) -> ParseFn:
    """A parse function bound to ``models`` (the graph's parse node calls the same)."""
    def parse(prompt: str, facts: list[Fact], previous: BeliefGraph | None) -> ParseResult:
        return parse_prompt(models, role, prompt, facts, previous=previous,
                            propose_json=propose_json)
    return parse


def make_answer_reader(models: Any, role: str = "parser") -> AnswerFn:
    """Facts from any answer: a free-text one (the paper's LLM user) is read back through
    the ``role`` model (:func:`answers.read_answer`), any other by :func:`fact_from_answer`."""
    def read(action: Action, answer: Answer, belief: BeliefGraph) -> list[Fact]:
        if answer.source == "llm-free":
            return read_answer(models, role, belief, action, answer.text).facts
        fact = fact_from_answer(action, answer, belief)
        return [fact] if fact is not None else []
    return read


def _value_answers(action: Action, answer: Answer, belief: BeliefGraph) -> list[Fact]:
    fact = fact_from_answer(action, answer, belief)
    return [fact] if fact is not None else []


def fact_from_answer(action: Action, answer: Answer, belief: BeliefGraph) -> Fact | None:
    """The fact an answer establishes (None when a free question maps to no slot).

    "No preference" becomes an ``unspecified`` fact: the slot is never asked again and no
    value is asserted for it.
    """
    action = resolve_free(action, [e.name for e in belief.entities])
    if action.kind == "free":
        return None
    base = {"entity": action.entity, "attribute": action.attribute, "related": action.related}
    value = answer.value.strip().lower() if answer.value else UNSPECIFIED
    if action.kind != "binary" or value == UNSPECIFIED:
        return Fact(**base, value=value)
    if value not in ("yes", "no"):
        return Fact(**base, value=UNSPECIFIED)
    if action.attribute == PRESENT:
        return Fact(**base, value=value)
    return Fact(**base, value=action.candidate, negated=value == "no")


class TurnMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)
    turn: int
    questions: int
    fact_coverage: float | None = None  # strict: values with p > 0.5 only
    fact_coverage_argmax: float | None = None  # every slot at its most probable value
    belief_nll: float | None = None


class Trajectory(BaseModel):
    """Everything one simulated session produced, turn by turn."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    turns: list[TurnMetrics]
    beliefs: list[BeliefGraph]
    history: list[dict[str, Any]] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    pins: list[list[Pin]] = Field(default_factory=list)  # per parse
    failures: list[str] = Field(default_factory=list)
    prompt: str = ""
    stop_reason: str = ""

    @property
    def belief(self) -> BeliefGraph:
        return self.beliefs[-1]

    def curve(self, metric: str = "fact_coverage", length: int | None = None) -> list[float]:
        """Per-turn values; a session that stopped early keeps its last value."""
        values = [getattr(t, metric) for t in self.turns]
        n = length or len(values)
        return [values[min(i, len(values) - 1)] for i in range(n)]


def evaluate(belief: BeliefGraph, scene: Scene | None, turn: int, questions: int,
             match: Matcher | None = None) -> TurnMetrics:
    if scene is None:
        return TurnMetrics(turn=turn, questions=questions)
    return TurnMetrics(turn=turn, questions=questions,
                       fact_coverage=fact_coverage(belief, scene, match),
                       fact_coverage_argmax=argmax_fact_coverage(belief, scene, match),
                       belief_nll=belief_nll(belief, scene))


def simulate(parse: ParseFn, policy: Policy, user: User, prompt: str, max_turns: int,
             scene: Scene | None = None, match: Matcher | None = None,
             stop_rule: str = "settled", read: AnswerFn | None = None) -> Trajectory:
    """Run one clarification session: ask until the stopping rule or the budget says stop.
    ``read`` turns each answer into facts (default: an answer is a value; bind
    :func:`make_answer_reader` for a free-text user)."""
    read = read or _value_answers
    facts: list[Fact] = []
    history: list[dict[str, Any]] = []
    result = parse(prompt, facts, None)
    beliefs, pins, failures = [result.belief], [result.pins], list(result.failures)
    turns = [evaluate(result.belief, scene, 0, 0, match)]
    reason = ""
    for turn in range(max_turns + 1):
        belief = beliefs[-1]
        stop, reason = should_stop(belief, turn, max_turns, rule=stop_rule)
        if stop:
            break
        action = policy(belief, history)
        if action is None:
            reason = "no open slots"
            break
        answer = user.answer(action)
        for fact in read(action, answer, belief):
            facts.append(fact)
            prompt = merge_fact(prompt, fact)
        history.append({"question": action.question, "answer": answer.value,
                        "action": action.model_dump(mode="json", exclude={"runner_ups"}),
                        **({"text": answer.text} if answer.source == "llm-free" else {})})
        result = parse(prompt, facts, belief)
        beliefs.append(result.belief)
        pins.append(result.pins)
        failures += result.failures
        turns.append(evaluate(result.belief, scene, turn + 1, len(history), match))
    return Trajectory(turns=turns, beliefs=beliefs, history=history, facts=facts, pins=pins,
                      failures=failures, prompt=prompt, stop_reason=reason)


def run_benchmark(items: Sequence[Item], parse: ParseFn,
                  policy_for: Callable[[int, Item], Policy],
                  user_for: Callable[[int, Item], User], max_turns: int,
                  target: float = 0.8, name: str = "", stop_rule: str = "settled",
                  read: AnswerFn | None = None) -> dict[str, Any]:
    """Mean per-turn coverage (strict and argmax) and NLL over items, the single-turn
    baseline, and the mean number of questions to reach ``target`` coverage (max_turns + 1
    when never reached); ``questions_to_coverage`` is on the strict curve, as before."""
    runs = [simulate(parse, policy_for(i, it), user_for(i, it), it.short, max_turns,
                     scene=it.scene, stop_rule=stop_rule, read=read)
            for i, it in enumerate(items)]
    scored = [r for r in runs if r.turns[0].fact_coverage is not None]
    n = max_turns + 1
    turns = [{"turn": t, "questions": _mean([r.turns[min(t, len(r.turns) - 1)].questions
                                             for r in runs]),
              "fact_coverage": _mean([r.curve("fact_coverage", n)[t] for r in scored]),
              "fact_coverage_argmax": _mean([r.curve("fact_coverage_argmax", n)[t]
                                             for r in scored]),
              "belief_nll": _mean([r.curve("belief_nll", n)[t] for r in scored])}
             for t in range(n)]
    reach = [questions_to_reach(r.curve("fact_coverage", n), target) for r in scored]
    reach_argmax = [questions_to_reach(r.curve("fact_coverage_argmax", n), target)
                    for r in scored]
    return {"items": len(runs), "policy": name, "turns": turns,
            "single_turn": {k: turns[0][k] for k in ("fact_coverage",
                                                      "fact_coverage_argmax", "belief_nll")},
            "questions_to_coverage": {"target": target, "mean": _mean(
                [max_turns + 1 if q is None else q for q in reach])},
            "questions_to_coverage_argmax": {"target": target, "mean": _mean(
                [max_turns + 1 if q is None else q for q in reach_argmax])},
            "parse_failures": sum(len(r.failures) for r in runs)}


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0
