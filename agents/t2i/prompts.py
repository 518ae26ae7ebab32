"""Prompts the agent sends to its models, one builder per request kind.

Each prompt is a chat message whose first line names its kind (the ``*_HEADER`` constants),
and puts the text the answer depends on on labelled lines (``Description:``, ``Question:``),
so the scripted stand-in model (``scripted:t2i``) can answer them by rule and a real model
sees a short, regular task. Options are scored as continuations (``models.choose``) and
therefore start with a space.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tinmen.agents.t2i.vocabulary import BACKGROUND, STYLE_ENTITY

if TYPE_CHECKING:
    from tinmen.agents.t2i.belief import BeliefGraph

Messages = list[dict[str, str]]

PARSE_HEADER = "Extract the entities of an image description as JSON."
SLOT_HEADER = "Answer a question about an image description with one word."
QUESTION_HEADER = "Write one short clarifying question for a text-to-image user."
FREE_HEADER = "Ask the user one short question about the image they want."
USER_HEADER = "You are a user who wants one particular image."
AG3_HEADER = "You help a user get the image they want by asking one clarifying question."
FREE_USER_HEADER = "You are a user who wants the image described below; answer the agent."
SENTENCE_HEADER = "Turn a question and its answer into one declarative sentence."
BELIEF_CANDIDATES = 4  # candidates shown per slot in the Ag3 prompt (a small model's window)

PARSE_EXAMPLE = {"entities": [
    {"name": "rabbit", "type": "explicit", "attributes": [{"name": "color", "value": "white"}]},
    {"name": "grass", "type": "explicit", "attributes": []}]}


def user(content: str) -> Messages:
    return [{"role": "user", "content": content}]


def one_line(text: str) -> str:
    """Descriptions go on one labelled line (long ones contain paragraph breaks)."""
    return " ".join(text.split())


def subject(entity: str) -> str:
    if entity == BACKGROUND:
        return "the background"
    if entity == STYLE_ENTITY:
        return "the image"
    return f"the {entity}"


def parse_prompt(description: str) -> Messages:
    """JSON proposal of entities and stated attribute values (decoded under a schema)."""
    example = json.dumps(PARSE_EXAMPLE, separators=(",", ":"))
    return user(f"{PARSE_HEADER}\nExample description: a white rabbit on grass\n"
                f"Example JSON: {example}\nDescription: {one_line(description)}\nJSON:")


def slot_prompt(description: str, entity: str, attribute: str) -> Messages:
    """Which value of one attribute the description implies (scored over candidates)."""
    if attribute == "position":
        question = f"Where is {subject(entity)}: left, center or right?"
    else:
        question = f"What {attribute} is {subject(entity)}?"
    return user(f"{SLOT_HEADER}\nDescription: {one_line(description)}\n"
                f"Question: {question}\nAnswer:")


def presence_prompt(description: str, entity: str) -> Messages:
    return user(f"{SLOT_HEADER}\nDescription: {one_line(description)}\n"
                f"Question: Is there a {entity} in the image? yes or no\nAnswer:")


def relation_prompt(description: str, a: str, b: str) -> Messages:
    return user(f"{SLOT_HEADER}\nDescription: {one_line(description)}\n"
                f"Question: Where is the {a} relative to the {b}?\nAnswer:")


def question_prompt(description: str, entity: str, attribute: str, kind: str,
                    candidates: list[str], draft: str) -> Messages:
    """Belief-LLM: the graph chose the slot; the model only words the question (one worked
    example, as in the paper's template, keeps a small model on task)."""
    return user(f"{QUESTION_HEADER}\nIt must end with a question mark and offer the "
                "candidates as options.\n"
                "Example: entity: rabbit\nattribute: color\ncandidates: black, white, brown\n"
                "Question: What color should the rabbit be: black, white or brown?\n\n"
                f"Description: {one_line(description)}\nentity: {entity}\n"
                f"attribute: {attribute}\nentity_type: {kind}\n"
                f"candidates: {', '.join(candidates[:5])}\nDraft: {draft}\nQuestion:")


def free_question_prompt(description: str, history: list[dict[str, Any]]) -> Messages:
    """LLM-only ablation: no graph, only the prompt and the conversation so far."""
    chat = "".join(f"Asked: {h.get('question', '')}\nAnswer: {h.get('answer', '')}\n"
                   for h in history)
    return user(f"{FREE_HEADER}\nDescription: {one_line(description)}\n{chat}"
                "Ask about a missing visual detail (colour, size, position, background).\n"
                "Question:")


def user_prompt(intent: str, question: str) -> Messages:
    """The simulated user holding the long description answers one question."""
    return user(f"{USER_HEADER}\nDescription: {one_line(intent)}\nQuestion: {question}\nAnswer:")


def belief_text(belief: BeliefGraph, limit: int = BELIEF_CANDIDATES) -> str:
    """The belief graph as the Ag3 prompt shows it (the reference prints the same fields):
    one line per entity (kind, importance, probability of appearing), one per attribute
    (importance to ask, the top candidates with their probabilities), one per relation."""
    lines = []
    for e in belief.entities:
        lines.append(f"entity: {e.name} ({e.kind}, importance {e.importance:.1f}, "
                     f"probability of appearing {e.probability:.2f})")
        for a in e.attributes:
            top = sorted(a.candidates.items(), key=lambda kv: -kv[1])[:limit]
            shown = ", ".join(f"{v} {p:.2f}" for v, p in top)
            lines.append(f"- {e.name}.{a.name} (importance {a.importance:.1f}): {shown}")
    for r in belief.relations:
        top = sorted(r.candidates.items(), key=lambda kv: -kv[1])[:limit]
        shown = ", ".join(f"{v} {p:.2f}" for v, p in top)
        lines.append(f"- relation {r.subject} | {r.object} (importance {r.importance:.1f}): "
                     f"{shown}")
    return "\n".join(lines)


def dialogue(prompt: str, history: list[dict[str, Any]]) -> str:
    """The conversation so far as the reference writes it (User / Agent turns)."""
    turns = [f"User: {one_line(prompt)}"]
    for h in history:
        turns += [f"Agent: {h.get('question', '')}",
                  f"User: {one_line(str(h.get('text') or h.get('answer', '')))}"]
    return "\n".join(turns)


def ag3_prompt(description: str, belief: str, history: list[dict[str, Any]]) -> Messages:
    """Ag3 (the paper's belief-based LLM agent): the belief and the dialogue in, one
    question out. Shortened from the reference's ``select_action_based_on_belief_prompt``
    for a small model: ask about what is most uncertain and important, never what the
    prompt or the dialogue already answers; one question."""
    return user(f"{AG3_HEADER}\nThe user describes the image as: {one_line(description)}\n"
                "Your belief about the image (each candidate value has a probability; "
                "0.50 / 0.50 is uncertain, 0.90 / 0.10 fairly certain):\n"
                f"{belief}\nDialogue so far:\n{dialogue(description, history)}\n"
                "Ask the one short question that most reduces your uncertainty about "
                "important details. Do not ask what the description or the dialogue already "
                "answers.\nQuestion:")


def free_user_prompt(intent: str, question: str) -> Messages:
    """The paper's simulated user (``simulated_belief_user_prompt``, shortened): it holds
    the detailed description and answers any question in free text, faithful to the
    description; where the description does not say, its most likely answer."""
    return user(f"{FREE_USER_HEADER}\nDescription: {one_line(intent)}\n"
                "Answer faithfully to the description, briefly and confidently. If it does "
                "not say, give the most likely answer.\n"
                f"Question: {one_line(question)}\nAnswer:")


def sentence_prompt(question: str, answer: str) -> Messages:
    """The reference's transition step: question + free-text answer → one declarative
    sentence ("the firetruck in the image is red"), which the agent then reads by rule."""
    return user(f"{SENTENCE_HEADER}\nExample: Question: What color is the rabbit? "
                "Answer: white\nSentence: The rabbit is white.\n\n"
                f"Question: {one_line(question)}\nAnswer: {one_line(answer)}\nSentence:")


def labelled(text: str, label: str) -> str | None:
    """The value of a ``Label: value`` line (the last one), used by the scripted model."""
    found = None
    for line in text.splitlines():
        if line.startswith(label + ":"):
            found = line[len(label) + 1:].strip()
    return found
