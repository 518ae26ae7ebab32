"""A session that pauses for a person's answer and resumes in a second process.

The agent drafts a question with the model, then *pauses* (LangGraph ``interrupt``) until a
person answers; the answer is stored as a human input and becomes a belief with source
``user_edit``. The session is written as ``interrupted`` at the pause, so any later process
can continue it — nothing is re-run: the model call made before the pause is served from
the record. Try::

    python human_in_the_loop.py start --db runs.db            # prints SESSION, pauses
    python human_in_the_loop.py resume SESSION teal --db runs.db
    tinmen resume SESSION --db runs.db                         # the same, from the CLI
    tinmen replay SESSION --db runs.db                         # identical, answers included
"""

from __future__ import annotations

import argparse
import os
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, Field

from tinmen import AgentDef, Context, recorded


class Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field("a new logo", description="What the question is about.")


class State(TypedDict, total=False):
    topic: str
    question: str
    colour: str
    summary: str


def ask(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    gen = ctx.models.generate("agent", f"Ask which colour the user wants for {state['topic']}.",
                              max_new_tokens=16)
    # the session stops here and is stored; interrupt() returns the answer on resume
    colour = interrupt({"kind": "answer", "question": gen.text.strip()})
    ctx.recorder.belief("user.colour", str(colour).strip(), source="user_edit", agent="agent")
    return {"question": gen.text.strip(), "colour": str(colour).strip()}


def summarise(state: State, runtime: Runtime[Context]) -> State:
    ctx = runtime.context
    gen = ctx.models.generate("agent", f"Confirm: {state['topic']} in {state['colour']}.",
                              max_new_tokens=16)
    ctx.recorder.decision("confirm", options=[{"option": "confirm", "score": 1.0}],
                          chosen="confirm", based_on=["user.colour"], agent="agent")
    return {"summary": gen.text.strip()}


def build(checkpointer: object) -> object:
    g = StateGraph(State, context_schema=Context)
    g.add_node("ask", recorded("ask", ask, agent="agent"))
    g.add_node("summarise", recorded("summarise", summarise, agent="agent"))
    g.add_edge(START, "ask")
    g.add_edge("ask", "summarise")
    g.add_edge("summarise", END)
    return g.compile(checkpointer=checkpointer)


AGENT = AgentDef(
    name="colour-asker", build=build, roles={"agent": "smollm2"}, inputs=Inputs,
    initial_state=lambda inputs, options: {"topic": inputs["topic"]},
    output=lambda s: {"colour": s.get("colour"), "summary": s.get("summary")},
    description="asks a person a question, pauses, continues in any later process")


def main() -> None:
    from tinmen import (
        ModelPool,
        Store,
        checkpointer_for,
        resolve_spec,
        resume_session,
        run_session,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["start", "resume"])
    parser.add_argument("session", nargs="?", help="(resume) the paused session's id")
    parser.add_argument("answer", nargs="?", help="(resume) the person's answer")
    parser.add_argument("--db", default=os.environ.get("TINMEN_DB"))
    parser.add_argument("--model", default="scripted:echo", help="spec of the 'agent' role")
    args = parser.parse_args()

    store, pool = Store.open(args.db), ModelPool()
    if args.step == "start":
        # answer=None: nobody is at the keyboard in this process, so the session pauses
        result = run_session(store, AGENT, {"topic": "a new logo"},
                             {"agent": resolve_spec(args.model)}, pool=pool,
                             answer=lambda payload: None, checkpointer=checkpointer_for(store))
    else:
        if not (args.session and args.answer):
            parser.error("resume needs SESSION and ANSWER")
        result = resume_session(store, args.session, lambda payload: args.answer, pool=pool)
    print(result.session_id, result.status, result.output)


if __name__ == "__main__":
    main()
