"""The proactive clarifying text-to-image agent as a LangGraph graph (Hahn et al., 2025).

parse → evaluate → check_stop ─stop→ generate → score → END
                        └continue→ select → ask (simulated user or human interrupt) → update → parse

Each belief version (the whole graph, every slot's distribution and entropy, each pin),
each decision (stop or continue; which question, with the runner-ups), every answer and
every image is recorded.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.t2i import policies
from tinmen.agents.t2i.answers import read_answer
from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.designbench import belief_change, weighted_entropy
from tinmen.agents.t2i.edits import apply_edit, is_edit, reapply_edit
from tinmen.agents.t2i.facts import UNSPECIFIED, Fact, merge_fact
from tinmen.agents.t2i.loop import fact_from_answer
from tinmen.agents.t2i.metrics import (
    argmax_fact_coverage,
    belief_nll,
    embedding_matcher,
    fact_coverage,
)
from tinmen.agents.t2i.parsing import parse_prompt
from tinmen.agents.t2i.scenes import Scene
from tinmen.agents.t2i.users import (
    Answer,
    FreeTextLLMUser,
    LLMUser,
    OracleUser,
    StochasticUser,
)
from tinmen.graphs.runtime import AgentDef, Context, recorded

from tinmen.errors import BeliefEditError, ConfigError


class Options(BaseModel):
    """Options of one T2I session (``--set KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    policy: policies.PolicyName = Field("attribute", description="How the agent picks its "
                                        "question: " + ", ".join(policies.POLICIES) + ".")
    user: Literal["oracle", "llm", "llm-free", "stochastic", "human"] = Field(
        "oracle", description="Who answers: the scene oracle; an LLM user holding the long "
        "description that picks among the offered options (llm) or, as in the paper, answers "
        "any question in free text that the parser reads back (llm-free; role 'user'); a "
        "stochastic user; or a person (the session pauses).")
    stop_rule: policies.StopRule = Field(
        "settled", description="When the agent stops asking before the budget: settled — "
        "every important candidate at p ≤ 0.1 or ≥ 0.9; reference — the reference code's "
        "rule, every attribute's top candidate ≥ 0.7.")
    max_turns: int = Field(5, ge=0, le=100, description="Questions asked at most.")
    images: Literal["end", "each"] = Field("end", description="Draw the picture at the end "
                                           "only, or after every turn.")
    vocabulary: Literal["shapes", "open"] = Field(
        "shapes", description="What entities may be: 'shapes', the shapes world and a list "
        "of everyday objects; 'open', any span of the prompt the parser proposes, with "
        "open slots' candidates scored by the model (DesignBench).")


class Inputs(BaseModel):
    """The user's short prompt; a simulated user also needs the hidden description or
    scene."""

    model_config = ConfigDict(extra="allow")

    short: str = Field(min_length=1, description="The prompt the user types.")
    long: str = Field("", description="The detailed description an LLM user holds.")
    scene: Scene | None = Field(None, description="The ground-truth scene (oracle user).")


class State(TypedDict, total=False):
    prompt: str
    short: str
    long: str
    scene: dict | None
    belief: dict
    facts: list[dict]  # every answered fact (agents.t2i.facts.Fact), pinned on each parse
    edited: bool
    edit_error: str | None  # the last edit was rejected: ask the same question again
    edits: list[str]
    turn: int
    history: list[dict]
    action: dict | None
    stop: bool
    image: str | None
    turns: list[dict]


def _belief(state: State) -> BeliefGraph:
    return BeliefGraph.from_json(state["belief"])


def parse(state: State, runtime: Runtime[Context]) -> State:
    """Re-parse the (merged) prompt; answered facts are pinned, user edits re-applied."""
    ctx = runtime.context
    facts = [Fact.model_validate(f) for f in state.get("facts", [])]
    previous = _belief(state) if state.get("belief") else None
    result = parse_prompt(ctx.models, "parser", state["prompt"], facts, previous=previous,
                          vocabulary=ctx.options.get("vocabulary", "shapes"))
    belief = result.belief
    for edit in state.get("edits", []):
        belief = reapply_edit(belief, edit)
    rec, turn = ctx.recorder, state.get("turn", 0)
    rec.belief("belief_graph", belief.to_json(), entropy=belief.total_entropy, agent="agent")
    for slot in belief.slots:
        rec.belief(slot.key, slot.best[0], distribution=slot.candidates,
                   source="rule" if slot.pinned else "model", agent="agent")
    for pin in result.pins:
        rec.belief(f"pin:{pin.entity}.{pin.attribute}", pin.value, source="rule", agent="agent")
    for why in result.failures:  # counted and kept: the graph itself never goes invalid
        rec.belief(f"parse_failure:{turn}", why, source="model", agent="agent")
    rec.metric("parse_failures", len(result.failures), turn=turn)
    if previous is not None and state.get("history") and not state.get("edited"):
        _record_change(rec, previous, belief, state["history"][-1], turn)
    return {"belief": belief.to_json()}


def _picture(ctx: Context, state: State) -> tuple[str, float | None]:
    """Draw the belief's most likely scene with the ``t2i`` model (stored as an artifact);
    with a ``scorer`` bound, its alignment with the item's description (ground truth)."""
    image = ctx.models.generate_image("t2i", _belief(state).to_prompt())
    sha = image.info.get("sha256")
    turn = state.get("turn", 0)
    ctx.recorder.belief(f"image:{turn}", sha, source="model", agent="agent")
    if "scorer" not in ctx.models.bindings:
        return sha, None
    target = state.get("long") or state.get("short") or state["prompt"]
    score = ctx.models.score_image_text("scorer", image, target)
    ctx.recorder.metric("image_text_alignment", score, turn=turn)
    return sha, score


def _record_change(rec: Any, before: BeliefGraph, after: BeliefGraph, last: dict,
                   turn: int) -> None:
    """Did the answer just merged change the belief (designbench.belief_change: some
    distribution moved by > epsilon in total variation)? Recorded for every user kind."""
    change = belief_change(before, after)
    asked = str((last.get("action") or {}).get("target", ""))
    rec.metric("answer_changed_belief", float(change.changed), turn=turn)
    rec.metric("answer_changed_other_slots", float(change.changed_beyond(asked)), turn=turn)
    rec.metric("belief_max_tv", change.max_tv, turn=turn)


def _record_entropy(rec: Any, belief: BeliefGraph, state: State) -> None:
    """Measures that need no ground truth, every turn."""
    turn = state.get("turn", 0)
    rec.metric("belief_entropy", belief.total_entropy, turn=turn)
    rec.metric("belief_entropy_weighted", weighted_entropy(belief), turn=turn)
    rec.metric("questions", float(len(state.get("history", []))), turn=turn)


def evaluate(state: State, runtime: Runtime[Context]) -> State:
    """Fact coverage and belief NLL against the item's scene; with an ``embedder`` bound,
    names and values match their synonyms (cosine ≥ 0.85, each embedding call recorded).
    With the option ``images="each"`` the belief is also drawn (and scored) every turn."""
    ctx = runtime.context
    update: State = {}
    alignment = None
    if ctx.options["images"] == "each" and "t2i" in ctx.models.bindings:
        update["image"], alignment = _picture(ctx, state)
    _record_entropy(ctx.recorder, _belief(state), state)
    if not state.get("scene"):
        return update
    belief, scene = _belief(state), Scene.model_validate(state["scene"])
    match = embedding_matcher(lambda texts: ctx.models.embed("embedder", texts)) \
        if "embedder" in ctx.models.bindings else None
    row = {"turn": state.get("turn", 0),
           "fact_coverage_argmax": argmax_fact_coverage(belief, scene, match),
           "fact_coverage": fact_coverage(belief, scene, match),
           "belief_nll": belief_nll(belief, scene), "questions": len(state.get("history", []))}
    if alignment is not None:
        row["image_text_alignment"] = alignment
    for name in ("fact_coverage_argmax", "fact_coverage", "belief_nll"):
        ctx.recorder.metric(name, row[name], turn=row["turn"])
    return {**update, "turns": state.get("turns", []) + [row]}


def check_stop(state: State, runtime: Runtime[Context]) -> State:
    opts = runtime.context.options
    belief = _belief(state)
    stop, why = policies.should_stop(belief, state.get("turn", 0), int(opts["max_turns"]),
                                     rule=opts.get("stop_rule", "settled"))
    nothing_left = policies.choose_action("attribute", belief, []) is None
    stop = stop or (nothing_left and opts["policy"] != "llm-only")
    runtime.context.recorder.decision(
        "stop", options=[{"option": "stop", "score": float(stop)},
                         {"option": "continue", "score": float(not stop)}],
        chosen="stop" if stop else "continue", uncertainty=belief.total_entropy,
        rationale=why if not nothing_left else "no open slots", based_on=["belief_graph"],
        agent="agent")
    return {"stop": stop}


def select(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    policy, belief, history = policies.canonical(ctx.options["policy"]), _belief(state), \
        state.get("history", [])
    if policy == "llm-only":
        action, runner_ups, based = policies.llm_only_question(
            ctx.models, "questioner", state["prompt"], history), (), []
    elif policy == "ag3":  # the LLM reads the whole belief and the dialogue
        action, runner_ups, based = policies.ag3_question(
            ctx.models, "questioner", belief, state["prompt"], history), (), ["belief_graph"]
    else:
        choice = policies.choose_action(policy, belief, history, seed=ctx.seed)
        action, runner_ups = choice.action, choice.runner_ups
        if policy == "belief-llm-template":
            action = policies.llm_question(ctx.models, "questioner", belief, action)
        based = [f"{action.entity}.{action.attribute}"]
    slot = belief.slot(action.entity, action.attribute) if action.entity else None
    ctx.recorder.decision(
        "question", options=[{"option": a.label, "score": a.score}
                             for a in (action, *runner_ups)],
        chosen=action.label, uncertainty=slot.entropy if slot else None,
        rationale=action.question, based_on=based, agent="agent")
    return {"action": action.model_dump(mode="json")}


def _simulated_user(state: State, ctx: Context) -> Any:
    kind = ctx.options["user"]
    if kind == "llm":
        return LLMUser(ctx.models, "user", state.get("long") or state["short"])
    if kind == "llm-free":
        return FreeTextLLMUser(ctx.models, "user", state.get("long") or state["short"])
    if kind == "stochastic":
        return StochasticUser(_belief(state), seed=ctx.seed + state.get("turn", 0))
    return OracleUser(Scene.model_validate(state["scene"]))


NO_PREFERENCE_WORDS = frozenset({"", "any", "anything", "whatever", "skip", "no preference",
                                  "i have no preference", "don't care", "dont care", "either"})


def human_value(action: policies.Action, text: str) -> str:
    """A typed answer as a value: an option (by text or its number), yes/no, "unspecified"
    for no preference, else the words as typed (a value the agent had not thought of)."""
    value = text.strip().lower().rstrip(".!")
    if value in NO_PREFERENCE_WORDS:
        return UNSPECIFIED
    if action.kind == "binary":
        return {"y": "yes", "n": "no"}.get(value, value)
    options = [o.lower() for o in action.options]
    if value.isdigit() and 1 <= int(value) <= len(options):
        return options[int(value) - 1]
    return value


def ask(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    action = policies.Action.model_validate(state["action"])
    if ctx.options["user"] == "human":
        problem = state.get("edit_error")
        payload = {"kind": "answer", "question": action.question,
                   "options": list(action.options), "belief": state["belief"]}
        response = str(interrupt({**payload, "error": problem} if problem else payload))
        if is_edit(response):
            try:
                apply_edit(_belief(state), response)
            except BeliefEditError as exc:  # say why and ask again; nothing is lost
                ctx.recorder.belief(f"edit_rejected:{response}", str(exc), source="user_edit",
                                    agent="human")
                return {"edit_error": str(exc), "edited": False}
            ctx.recorder.belief(f"edit:{response}", response, source="user_edit", agent="human")
            return {"edits": state.get("edits", []) + [response], "edited": True,
                    "edit_error": None}
        answer = Answer(text=response, value=human_value(action, response), source="human")
    else:
        answer = _simulated_user(state, ctx).answer(action)
    ctx.recorder.belief(f"answer:{action.label}", answer.value, source="model",
                        agent=answer.source)
    entry = {"question": action.question, "answer": answer.value, "action": state["action"]}
    if answer.source == FreeTextLLMUser.source:  # free text: the parser reads it (update)
        entry["text"] = answer.text
    return {"edited": False, "edit_error": None,
            "history": state.get("history", []) + [entry]}


def update(state: State, runtime: Runtime[Context]) -> State:
    """Turn the last answer into facts and merge them into the prompt; the next parse pins
    them. A value answer gives one fact (the pure loop's rule); a free-text answer (the
    paper's LLM user) is read back through the parser role, and the reading is recorded."""
    last = state["history"][-1]
    action = policies.Action.model_validate(last["action"])
    turn = state.get("turn", 0)
    if "text" in last:
        reading = read_answer(runtime.context.models, "parser", _belief(state), action,
                              last["text"])
        runtime.context.recorder.belief(f"answer_reading:{turn}",
                                        reading.model_dump(mode="json"), source="model",
                                        agent="agent")
        facts = reading.facts
    else:
        answer = Answer(text=last["answer"], value=last["answer"], source="agent")
        fact = fact_from_answer(action, answer, _belief(state))
        facts = [fact] if fact is not None else []
    done: State = {"turn": turn + 1}
    if not facts:
        return done
    prompt = state["prompt"]
    for fact in facts:
        prompt = merge_fact(prompt, fact)
    return {**done, "prompt": prompt, "facts": state.get("facts", []) + [
        f.model_dump(mode="json") for f in facts]}


def generate(state: State, runtime: Runtime[Context]) -> State:
    """The final image (already drawn by evaluate when images are drawn every turn)."""
    ctx = runtime.context
    if "t2i" not in ctx.models.bindings:
        return {"image": None}
    if ctx.options["images"] == "each" and state.get("image"):
        return {}
    return {"image": _picture(ctx, state)[0]}


def route_stop(state: State) -> Literal["select", "generate"]:
    return "generate" if state.get("stop") else "select"


def route_answer(state: State) -> Literal["update", "parse", "ask"]:
    if state.get("edit_error"):
        return "ask"
    return "parse" if state.get("edited") else "update"


def build(checkpointer: Any) -> Any:
    g = StateGraph(State, context_schema=Context)
    for name, fn in (("parse", parse), ("evaluate", evaluate), ("check_stop", check_stop),
                     ("select", select), ("ask", ask), ("update", update),
                     ("generate", generate)):
        g.add_node(name, recorded(name, fn, agent="agent"))
    g.add_edge(START, "parse")
    g.add_edge("parse", "evaluate")
    g.add_edge("evaluate", "check_stop")
    g.add_conditional_edges("check_stop", route_stop)
    g.add_edge("select", "ask")
    g.add_conditional_edges("ask", route_answer)
    g.add_edge("update", "parse")
    g.add_edge("generate", END)
    return g.compile(checkpointer=checkpointer)


def initial_state(inputs: dict[str, Any], options: dict[str, Any]) -> State:
    if options["user"] == "oracle" and not inputs.get("scene"):
        # the oracle answers from the scene: refused before the graph runs, not mid-session
        raise ConfigError("t2i option user='oracle' answers from the item's ground-truth "
                          "'scene', and this input has none; add one or use user=llm")
    return {"prompt": inputs["short"], "short": inputs["short"], "long": inputs.get("long", ""),
            "scene": inputs.get("scene"), "facts": [], "edits": [], "turn": 0,
            "history": [], "turns": [], "image": None}


def output(state: dict[str, Any]) -> dict[str, Any]:
    return {"belief": state.get("belief"), "prompt": state.get("prompt"),
            "final_prompt": BeliefGraph.from_json(state["belief"]).to_prompt()
            if state.get("belief") else None, "turns": state.get("turns", []),
            "questions": [h["question"] for h in state.get("history", [])],
            "image": state.get("image")}


ROLES = {"parser": "smollm2", "questioner": "smollm2", "user": "", "t2i": "shapes-renderer",
         "scorer": "", "embedder": ""}
AGENT = AgentDef(name="t2i", build=build, roles=ROLES, initial_state=initial_state,
                 output=output, options=Options, inputs=Inputs,
                 description="proactive clarifying text-to-image agent",
                 report="tinmen.graphs.t2i_eval:report")
