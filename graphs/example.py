"""A small example graph: classify a request, decide to answer or clarify, then write.

It shows the three things every tinmen graph does — beliefs from the model's own
distribution over allowed options, a decision with its scored alternatives, and free text
only where text is the product — on the default packaged LLM.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer
from pydantic import BaseModel, ConfigDict, Field
from tinmen.graphs.runtime import AgentDef, Context, recorded

TOPICS = ["science", "cooking", "travel", "sports", "money"]
CLARIFY_ENTROPY = 1.2  # nats; above this the topic is too unclear to answer directly


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(32, ge=1, le=4096, description="Length limit of the reply.")


class Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: str = Field(min_length=1, description="The request the agent handles.")


class State(TypedDict, total=False):
    request: str
    topic: str
    topic_probs: dict[str, float]
    action: str
    reply: str


def classify(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    prompt = [{"role": "user", "content": f"Request: {state['request']}\n"
               f"Which topic is this request about: {', '.join(TOPICS)}? Answer with one word."}]
    choice = ctx.models.choose("agent", prompt, [f" {t}" for t in TOPICS])
    probs = {t: p for t, p in zip(TOPICS, choice.probs)}
    ctx.recorder.belief("request.topic", choice.best.strip(), distribution=probs, agent="agent")
    return {"topic": choice.best.strip(), "topic_probs": probs}


def decide(state: State, runtime: Runtime[Context]) -> State:
    from tinmen.graphs.recorder import entropy_of

    ctx = runtime.context
    h = entropy_of(state["topic_probs"])
    action = "clarify" if h > CLARIFY_ENTROPY else "answer"
    ctx.recorder.decision("answer_or_clarify", options=[
        {"option": "answer", "score": CLARIFY_ENTROPY - h},
        {"option": "clarify", "score": h - CLARIFY_ENTROPY}], chosen=action, uncertainty=h,
        rationale=f"topic entropy {h:.2f} nats vs threshold {CLARIFY_ENTROPY}",
        based_on=["request.topic"], agent="agent")
    return {"action": action}


def write(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    ask = ("Ask one short clarifying question about this request." if state["action"] ==
           "clarify" else f"Answer this {state['topic']} request in one sentence.")
    gen = ctx.models.generate("agent", [{"role": "user", "content":
                                         f"{ask}\nRequest: {state['request']}"}],
                              max_new_tokens=ctx.options["max_new_tokens"])
    ctx.recorder.belief("reply.nll", round(gen.nll, 6), agent="agent", source="model")
    return {"reply": gen.text.strip()}


def route(state: State) -> Literal["write", "__end__"]:
    return "write" if state.get("topic") else "__end__"


def build(checkpointer: Checkpointer) -> object:
    g = StateGraph(State, context_schema=Context)
    g.add_node("classify", recorded("classify", classify, agent="agent"))
    g.add_node("decide", recorded("decide", decide, agent="agent"))
    g.add_node("write", recorded("write", write, agent="agent"))
    g.add_edge(START, "classify")
    g.add_edge("classify", "decide")
    g.add_conditional_edges("decide", route)
    g.add_edge("write", END)
    return g.compile(checkpointer=checkpointer)


AGENT = AgentDef(
    name="example", build=build, roles={"agent": "smollm2"}, options=Options, inputs=Inputs,
    initial_state=lambda inputs, options: {"request": inputs["request"]},
    output=lambda s: {"topic": s.get("topic"), "action": s.get("action"),
                      "reply": s.get("reply")},
    description="classify a request, decide answer-or-clarify, write the reply")
