"""A minimal custom agent in one file: tinmen runs, lists, shows, replays and forks it.

The agent reads a request, forms a *belief* about its sentiment from the model's own
distribution over three allowed words, *decides* whether to answer or to ask back, and
writes the reply. Copy this file into your project and try::

    tinmen run minimal_agent.py:AGENT --input '{"request": "I love this"}' -m agent=scripted:echo
    tinmen sessions                  # listed with the built-in agents' sessions
    tinmen show SESSION              # steps, beliefs, decisions, model calls
    tinmen replay SESSION            # re-run from the record: no model weights needed
    tinmen fork SESSION --at-step 1 -m agent=smollm2   # the same session, another model

or run it as a script (``python minimal_agent.py --db runs.db``), which does all of the
above through the library. Without ``-m`` the role uses its default, the packaged
SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import argparse
import os
from typing import Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from tinmen import AgentDef, Context, recorded

MOODS = ["happy", "neutral", "upset"]


class Options(BaseModel):
    """What ``--set KEY=VALUE`` may change; validated before a session starts."""

    model_config = ConfigDict(extra="forbid")
    ask_above: float = Field(0.9, ge=0, le=2, description="Ask back when the mood's entropy "
                             "(nats) is above this.")
    max_new_tokens: int = Field(24, ge=1, le=512, description="Length of the reply.")


class Inputs(BaseModel):
    """What ``--input`` must hold."""

    request: str = Field(min_length=1, description="What the user wrote.")


class State(TypedDict, total=False):
    request: str
    mood: str
    entropy: float
    action: str
    reply: str


def read_mood(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    prompt = f"Message: {state['request']}\nThe writer's mood, in one word:"
    # a belief from the model's distribution over allowed options, never from its prose
    choice = ctx.models.choose("agent", prompt, [f" {m}" for m in MOODS])
    ctx.recorder.belief("user.mood", choice.best.strip(),
                        distribution=dict(zip(MOODS, choice.probs)), agent="agent")
    return {"mood": choice.best.strip(), "entropy": choice.entropy}


def decide(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    limit = ctx.options["ask_above"]
    action = "ask" if state["entropy"] > limit else "answer"
    ctx.recorder.decision("answer_or_ask", options=[
        {"option": "answer", "score": limit - state["entropy"]},
        {"option": "ask", "score": state["entropy"] - limit}], chosen=action,
        uncertainty=state["entropy"], based_on=["user.mood"], agent="agent",
        rationale=f"mood entropy {state['entropy']:.2f} vs {limit}")
    return {"action": action}


def write(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    task = "Ask what they mean, in one sentence." if state["action"] == "ask" else \
        f"Reply kindly to this {state['mood']} message in one sentence."
    gen = ctx.models.generate("agent", f"{task}\nMessage: {state['request']}\nReply:",
                              max_new_tokens=ctx.options["max_new_tokens"])
    return {"reply": gen.text.strip()}


def route(state: State) -> Literal["write", "__end__"]:
    return "write" if state.get("action") else END


def build(checkpointer: object) -> object:
    g = StateGraph(State, context_schema=Context)
    for name, fn in (("read_mood", read_mood), ("decide", decide), ("write", write)):
        g.add_node(name, recorded(name, fn, agent="agent"))
    g.add_edge(START, "read_mood")
    g.add_edge("read_mood", "decide")
    g.add_conditional_edges("decide", route)
    g.add_edge("write", END)
    return g.compile(checkpointer=checkpointer)


AGENT = AgentDef(
    name="mood-replier", version="1", build=build, roles={"agent": "smollm2"},
    options=Options, inputs=Inputs,
    initial_state=lambda inputs, options: {"request": inputs["request"]},
    output=lambda s: {"mood": s.get("mood"), "action": s.get("action"),
                      "reply": s.get("reply")},
    description="reads the mood of a message, answers or asks back")


def main() -> None:
    from tinmen import ModelPool, Store, fork_session, replay_session, resolve_spec, run_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("TINMEN_DB"), help="the store (a "
                        "SQLAlchemy URL or a .db path; default TINMEN_DB or ./tinmen.db)")
    parser.add_argument("--model", default="scripted:echo", help="spec of the 'agent' role")
    args = parser.parse_args()

    store, pool = Store.open(args.db), ModelPool()
    result = run_session(store, AGENT, {"request": "I love this, thank you!"},
                         {"agent": resolve_spec(args.model)}, pool=pool)
    print("live:", result.session_id, result.output)
    report = replay_session(store, result.session_id)
    print("replay identical:", report.identical, f"({report.calls_served} calls served)")
    fork = fork_session(store, result.session_id, 1, {}, pool=pool, seed=7)
    print("fork:", fork.session_id, fork.output)


if __name__ == "__main__":
    main()
