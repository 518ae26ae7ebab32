"""The principal-agent shopper (Phelps & Ranson 2023) and its marketplace extension.

``AGENT`` (``shopper``) is the paper's one-shot task: *probe* the agent's beliefs (which
product the customer prefers, which the second principal prefers, who reads the
explanation — each a distribution from scoring allowed answers), let it *answer* the
paper's form in free text, then *decide*: parse the answer both ways, score the allowed
``Choice: N`` continuations, and record the purchase decision.

``MARKET_AGENT`` (``shopper-market``, an extension beyond the paper) is multi-step over a
generated catalogue: *search* (the affordable shortlist) → *inspect* (beliefs, with the
information only the agent sees) → *ask or buy* → optionally *ask* the simulated customer
(role ``customer``) what matters most → *buy*, with welfare metrics.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.shopper import market_prompts as mp
from tinmen.agents.shopper import prompts as pp
from tinmen.agents.shopper.market import (
    Market,
    Product,
    best_for_customer,
    generate_market,
    principal_gain,
    welfare_loss,
)
from tinmen.agents.shopper.parsing import (
    explanation_of,
    paper_parse,
    prefix_before_choice,
    robust_parse,
    span_nll,
)
from tinmen.agents.shopper.scenarios import CASES, INFO_CONDITIONS, SCENARIOS, Info, Trial
from tinmen.graphs.runtime import AgentDef, Context, recorded
from tinmen.graphs.study import Condition, StudyPlan
from tinmen.models.client import derive_seed
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

# The paper's runs allow 500 new tokens. The old default, 64, cut every SmolLM2 answer seen
# in a spot check (4 of 4) before its ``Choice:`` line, so neither parser could read it.
ANSWER_TOKENS = 500


class Options(BaseModel):
    """Options of one shopper session (``--set KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(0.0, ge=0, le=5, description="Sampling temperature of the "
                               "free-text answer (the paper: 0.2 and 0.6).")
    max_new_tokens: int = Field(ANSWER_TOKENS, ge=1, le=4096, description="Token limit of "
                                "the answer (the paper's runs: 500).")


class MarketInputs(BaseModel):
    """One marketplace trial: a generated catalogue and the information condition."""

    model_config = ConfigDict(extra="forbid")

    market_seed: int = Field(ge=0, lt=2**63, description="Seed of the generated catalogue.")
    info: Info = Field("both", description="Who reads the agent's explanation: both, "
                       "principal-only, customer-only or neither.")


BELIEFS = ["customer.preferred_item", "principal.preferred_item", "explanation.readers"]


class State(TypedDict, total=False):
    trial: dict[str, Any]
    market: dict[str, Any]
    info: str
    shortlist: list[int]
    priority: str | None
    action: str
    answer: str
    outcome: dict[str, Any]


# --------------------------------------------------------------------------- shared
def _probe(ctx: Context, subject: str, messages: pp.Messages, names: Sequence[str],
           options: Sequence[str]) -> str:
    """Record a belief whose distribution is the model's own over ``options``."""
    choice = ctx.models.choose("agent", messages, list(options))
    dist = dict(zip(names, choice.probs))
    value = names[choice.options.index(choice.best)]
    ctx.recorder.belief(subject, value, distribution=dist, agent="agent")
    return value


def _answer(ctx: Context, messages: pp.Messages) -> dict[str, Any]:
    gen = ctx.models.generate("agent", messages,
                              max_new_tokens=ctx.options["max_new_tokens"],
                              temperature=ctx.options["temperature"])
    return {"answer": gen.text, "tokens": list(gen.tokens),
            "logprobs": list(gen.token_logprobs)}


def _decide(ctx: Context, messages: pp.Messages, answer: dict[str, Any],
            keywords: Sequence[Sequence[str]], items: Sequence[Any],
            names: Sequence[str]) -> dict[str, Any]:
    """Parse the answer both ways, score every ``Choice: N``, record the purchase decision.

    ``items[label - 1]`` is what shown label ``label`` stands for (a canonical item number
    or a product id), ``names`` the matching display names.
    """
    text = answer["answer"]
    parsed = robust_parse(text, keywords)
    paper_label = paper_parse(text)
    n = len(items)
    choice = ctx.models.choose("agent", messages,
                               pp.choice_options(prefix_before_choice(text, parsed), n))
    nll = (span_nll(text, answer["tokens"], answer["logprobs"], parsed.start, parsed.end)
           if parsed.ok else None)
    item = items[parsed.label - 1] if parsed.ok else None
    paper_item = items[paper_label - 1] if paper_label in range(1, n + 1) else None
    chosen = {"item": item, "label": parsed.label, "method": parsed.method,
              "paper_label": paper_label, "paper_item": paper_item, "choice_nll": nll}
    ctx.recorder.decision(
        "purchase", chosen=chosen, uncertainty=choice.entropy,
        options=[{"option": names[i], "item": items[i], "label": i + 1, "score": p}
                 for i, p in enumerate(choice.probs)],
        rationale=explanation_of(text, parsed), based_on=BELIEFS, agent="agent")
    if nll is not None:
        ctx.recorder.metric("choice_nll", nll)
    return {**chosen, "probs": list(choice.probs)}


# --------------------------------------------------------------------------- the paper
def probe(state: State, runtime: Runtime[Context]) -> State:
    ctx, trial = runtime.context, Trial(**state["trial"])
    shown = [item.name for item in trial.shown_items()]
    for subject, question in ((BELIEFS[0], pp.PROBE_CUSTOMER), (BELIEFS[1], pp.PROBE_PRINCIPAL)):
        _probe(ctx, subject, pp.probe_messages(trial, question), shown, pp.product_options())
    readers = pp.reader_options(trial.spec.principal)
    _probe(ctx, BELIEFS[2], pp.probe_messages(trial, pp.PROBE_READERS), list(readers),
           list(readers.values()))
    return {}


def answer(state: State, runtime: Runtime[Context]) -> State:
    return {"outcome": _answer(runtime.context, pp.decision_messages(Trial(**state["trial"])))}


def decide(state: State, runtime: Runtime[Context]) -> State:
    ctx, trial = runtime.context, Trial(**state["trial"])
    shown = trial.shown_items()
    items = [trial.item_of(label) for label in (1, 2)]
    out = _decide(ctx, pp.decision_messages(trial), state["outcome"],
                  [item.keywords for item in shown], items, [item.name for item in shown])
    customer = trial.spec.customer_item
    ctx.recorder.metric("override_prob", sum(p for i, p in zip(items, out["probs"])
                                             if i != customer))
    return {"answer": state["outcome"]["answer"], "outcome": out}


def _build_paper(checkpointer: Checkpointer) -> object:
    g = StateGraph(State, context_schema=Context)
    for name, fn in (("probe", probe), ("answer", answer), ("decide", decide)):
        g.add_node(name, recorded(name, fn, agent="agent"))
    g.add_edge(START, "probe")
    g.add_edge("probe", "answer")
    g.add_edge("answer", "decide")
    g.add_edge("decide", END)
    return g.compile(checkpointer=checkpointer)


def _paper_output(s: State) -> dict[str, Any]:
    out, trial = s.get("outcome", {}), Trial(**s["trial"])
    item = out.get("item")
    return {**s["trial"], "answer": s.get("answer"), "item": item,
            "paper_item": out.get("paper_item"),
            "override": None if item is None else item != trial.spec.customer_item}


AGENT = AgentDef(
    name="shopper", build=_build_paper, roles={"agent": "smollm2"}, options=Options,
    inputs=Trial, report="tinmen.graphs.shopper_report:report",
    initial_state=lambda inputs, options: {"trial": Trial(**inputs).model_dump()},
    output=_paper_output,
    description="Phelps & Ranson's principal-agent shopper: probe beliefs, answer, decide")


# --------------------------------------------------------------------------- marketplace
def _market(s: State) -> Market:
    return Market.model_validate(s["market"])


def _shortlist(s: State) -> list[Product]:
    by_id = {p.id: p for p in _market(s).products}
    return [by_id[i] for i in s["shortlist"]]


def _context(s: State) -> str:
    return mp.context(_market(s), _shortlist(s), s.get("priority"))


def search(state: State, runtime: Runtime[Context]) -> State:
    ids = [p.id for p in _market(state).affordable()]
    runtime.context.recorder.belief("market.shortlist", ids, source="rule", agent="agent")
    return {"shortlist": ids}


def inspect(state: State, runtime: Runtime[Context]) -> State:
    ctx, op = runtime.context, _market(state).principal.name
    names = [p.name for p in _shortlist(state)]
    options = pp.product_options(len(names))
    for subject, question in ((BELIEFS[0], mp.PROBE_CUSTOMER), (BELIEFS[1], mp.PROBE_PRINCIPAL)):
        _probe(ctx, subject, mp.probe_messages(_context(state), question, op), names, options)
    readers = pp.reader_options(op)
    _probe(ctx, BELIEFS[2], mp.probe_messages(
        mp.purchase_messages(_context(state), op, state["info"])[0]["content"],
        pp.PROBE_READERS, op), list(readers), list(readers.values()))
    return {}


def ask_or_buy(state: State, runtime: Runtime[Context]) -> State:
    ctx, op = runtime.context, _market(state).principal.name
    choice = ctx.models.choose("agent", mp.probe_messages(_context(state), mp.PROBE_ASK, op),
                               list(mp.ASK_OPTIONS.values()))
    action = list(mp.ASK_OPTIONS)[choice.options.index(choice.best)]
    ctx.recorder.decision("ask_or_buy", chosen=action, uncertainty=choice.entropy,
                          options=[{"option": a, "score": p}
                                   for a, p in zip(mp.ASK_OPTIONS, choice.probs)],
                          rationale="scored allowed actions", based_on=BELIEFS[:2],
                          agent="agent")
    return {"action": action}


def ask(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    replies = mp.priority_options()
    choice = ctx.models.choose("customer", mp.customer_messages(_market(state),
                                                                mp.ASK_QUESTION),
                               list(replies.values()))
    said = list(replies)[choice.options.index(choice.best)]
    ctx.recorder.belief("customer.priority", said, distribution=dict(zip(replies, choice.probs)),
                        agent="agent")
    return {"priority": said}


def buy(state: State, runtime: Runtime[Context]) -> State:
    ctx, m = runtime.context, _market(state)
    shortlist = _shortlist(state)
    messages = mp.purchase_messages(_context(state), m.principal.name, state["info"])
    answered = _answer(ctx, messages)
    out = _decide(ctx, messages, answered, mp.keywords(shortlist), [p.id for p in shortlist],
                  [p.name for p in shortlist])
    ctx.recorder.metric("parsed", float(out["item"] is not None))
    ctx.recorder.metric("asked", float(state.get("action") == "ask"))
    if out["item"] is not None:
        bought = next(p for p in shortlist if p.id == out["item"])
        ctx.recorder.metric("override", float(bought.id != best_for_customer(m).id))
        ctx.recorder.metric("welfare_loss", welfare_loss(m, bought))
        ctx.recorder.metric("principal_gain", principal_gain(m, bought))
    return {"answer": answered["answer"], "outcome": out}


def route_ask(state: State) -> Literal["ask", "buy"]:
    return "ask" if state.get("action") == "ask" else "buy"


def _build_market(checkpointer: Checkpointer) -> object:
    g = StateGraph(State, context_schema=Context)
    for name, fn in (("search", search), ("inspect", inspect), ("ask_or_buy", ask_or_buy),
                     ("ask", ask), ("buy", buy)):
        g.add_node(name, recorded(name, fn, agent="customer" if name == "ask" else "agent"))
    g.add_edge(START, "search")
    g.add_edge("search", "inspect")
    g.add_edge("inspect", "ask_or_buy")
    g.add_conditional_edges("ask_or_buy", route_ask)
    g.add_edge("ask", "buy")
    g.add_edge("buy", END)
    return g.compile(checkpointer=checkpointer)


def _market_start(inputs: dict[str, Any], options: dict[str, Any]) -> State:
    m = generate_market(int(inputs["market_seed"]))
    return {"market": m.model_dump(), "info": inputs["info"],
            "priority": m.customer.priority if m.customer.states_priority else None}


def _market_output(s: State) -> dict[str, Any]:
    m, out = _market(s), s.get("outcome", {})
    return {"info": s.get("info"), "asked": s.get("action") == "ask", "answer": s.get("answer"),
            "bought": out.get("item"), "customer_best": best_for_customer(m).id}


MARKET_AGENT = AgentDef(
    name="shopper-market", build=_build_market,
    roles={"agent": "smollm2", "customer": "scripted:shopper-customer"},
    initial_state=_market_start, output=_market_output, options=Options,
    inputs=MarketInputs, report="tinmen.graphs.shopper_report:report",
    description="extension: search → inspect → ask or buy → buy over a generated catalogue")


# --------------------------------------------------------------------------- studies
def study_plan(scenarios: Sequence[str], agents: dict[str, ModelSpec],
               temperatures: Sequence[float], reps: int, *, controls: bool = False,
               customer: ModelSpec | None = None, max_new_tokens: int = ANSWER_TOKENS,
               seed: int = 0) -> StudyPlan:
    """The grid: scenario × condition [× labels × case] × temperature × agent model.

    Marketplace trials with the same rep share one generated catalogue across conditions,
    so conditions are compared on paired markets.
    """
    market = list(scenarios) == ["market"]
    if "market" in scenarios and not market:
        raise ConfigError("run the market scenario in its own study: --scenario market")
    unknown = sorted(set(scenarios) - set(SCENARIOS) - {"market"})
    if unknown:
        raise ConfigError(f"unknown scenario {unknown}; choose from film, car, market")
    grid = itertools.product(scenarios, INFO_CONDITIONS,
                             (False, True) if controls and not market else (False,),
                             CASES if controls and not market else ("standard",),
                             temperatures, agents)
    conditions = [Condition(f"{sc}|{info}|rev={int(rev)}|{case}|T={t}|{name}", {
        "scenario": sc, "info": info, "labels_reversed": rev, "case": case,
        "temperature": float(t), "model": name,
        "customer_item": None if market else SCENARIOS[sc].customer_item})
        for sc, info, rev, case, t, name in grid]

    def inputs_for(cond: Condition, rep: int) -> dict[str, Any]:
        p = cond.params
        if market:
            return {"market_seed": derive_seed(seed, "market", rep) % 2**31, "info": p["info"]}
        return {k: p[k] for k in ("scenario", "info", "labels_reversed", "case")}

    def bindings_for(cond: Condition) -> dict[str, ModelSpec]:
        chosen = {"agent": agents[cond.params["model"]]}
        return {**chosen, "customer": customer} if market and customer else chosen

    return StudyPlan(
        graph=MARKET_AGENT if market else AGENT, name="shopper " + "+".join(scenarios),
        conditions=conditions, reps=reps, inputs_for=inputs_for, bindings_for=bindings_for,
        options_for=lambda c: {"temperature": c.params["temperature"],
                               "max_new_tokens": max_new_tokens},
        seed=seed, config={"scenarios": list(scenarios), "models": list(agents),
                           "temperatures": [float(t) for t in temperatures], "reps": reps,
                           "controls": controls, "max_new_tokens": max_new_tokens})
