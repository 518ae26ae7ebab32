"""Two agents with different roles sharing one pooled model in one graph.

A *proposer* suggests a title for a text and a *critic* judges it; each is its own agent in
the record (its own ``agent`` row, beliefs and decisions), both roles are bound to the same
model spec, and the pool loads that model once and serves both (and batches their calls
when sessions run concurrently). Run::

    python shared_model.py --db runs.db                 # scripted model, instant
    python shared_model.py --db runs.db --model smollm2 # the packaged LLM, both roles
    tinmen show SESSION --db runs.db                    # proposer and critic rows
"""

from __future__ import annotations

import argparse
import os
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from tinmen import AgentDef, Context, recorded

STYLES = ["plain", "catchy", "formal"]


class Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, description="The text to title.")


class State(TypedDict, total=False):
    text: str
    style: str
    title: str
    verdict: str


def propose(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    choice = ctx.models.choose("proposer", f"Text: {state['text']}\nBest title style:",
                               [f" {s}" for s in STYLES])
    ctx.recorder.belief("title.style", choice.best.strip(),
                        distribution=dict(zip(STYLES, choice.probs)), agent="proposer")
    gen = ctx.models.generate("proposer", f"A {choice.best.strip()} title for: "
                              f"{state['text']}\nTitle:", max_new_tokens=12)
    return {"style": choice.best.strip(), "title": gen.text.strip()}


def critique(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    choice = ctx.models.choose("critic", f"Text: {state['text']}\nTitle: {state['title']}\n"
                               "Is the title good? Answer:", [" yes", " no"])
    verdict = "accept" if choice.best.strip() == "yes" else "revise"
    ctx.recorder.decision("accept_title", options=[
        {"option": "accept", "score": choice.probs[0]},
        {"option": "revise", "score": choice.probs[1]}], chosen=verdict,
        uncertainty=choice.entropy, based_on=["title.style"], agent="critic")
    return {"verdict": verdict}


def build(checkpointer: object) -> object:
    g = StateGraph(State, context_schema=Context)
    g.add_node("propose", recorded("propose", propose, agent="proposer"))
    g.add_node("critique", recorded("critique", critique, agent="critic"))
    g.add_edge(START, "propose")
    g.add_edge("propose", "critique")
    g.add_edge("critique", END)
    return g.compile(checkpointer=checkpointer)


AGENT = AgentDef(
    name="title-pair", build=build, roles={"proposer": "smollm2", "critic": "smollm2"},
    inputs=Inputs, initial_state=lambda inputs, options: {"text": inputs["text"]},
    output=lambda s: {"title": s.get("title"), "verdict": s.get("verdict")},
    description="a proposer and a critic on one shared model")


def main() -> None:
    from tinmen import ModelPool, Store, analysis, resolve_spec, run_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("TINMEN_DB"))
    parser.add_argument("--model", default="scripted:echo", help="spec for both roles")
    args = parser.parse_args()

    store, pool = Store.open(args.db), ModelPool()
    spec = resolve_spec(args.model)  # one spec, two roles: the pool loads it once
    result = run_session(store, AGENT, {"text": "Tinmen record every belief."},
                         {"proposer": spec, "critic": spec}, pool=pool)
    print("output:", result.output)
    print("models loaded:", len(pool.loaded()), "(shared by both roles)")
    rows = analysis.sessions(store, session=result.session_id, agent="critic")
    print("agents recorded:", sorted(analysis.beliefs(store, session=result.session_id)
                                     ["agent"].tolist() +
                                     analysis.decisions(store, session=result.session_id)
                                     ["agent"].tolist()), "| session found by agent:",
          len(rows) == 1)


if __name__ == "__main__":
    main()
