"""Prompts the agent sends to its models, one builder per request kind.

Each prompt is a chat message whose first line names its kind (the ``*_HEADER`` constants),
and puts the text the answer depends on on labelled lines (``Description:``, ``Question:``),
so the scripted stand-in model (``scripted:t2i``) can answer them by rule and a real model
sees a short, regular task. Options are scored as continuations (``models.choose``) and
therefore start with a space.
"""

from __future__ import annotations

import json
from typing import Any

from tinmen.agents.t2i.vocabulary import BACKGROUND, STYLE_ENTITY

Messages = list[dict[str, str]]

PARSE_HEADER = "Extract the entities of an image description as JSON."
SLOT_HEADER = "Answer a question about an image description with one word."
QUESTION_HEADER = "Write one short clarifying question for a text-to-image user."
FREE_HEADER = "Ask the user one short question about the image they want."
USER_HEADER = "You are a user who wants one particular image."

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


def labelled(text: str, label: str) -> str | None:
    """The value of a ``Label: value`` line (the last one), used by the scripted model."""
    found = None
    for line in text.splitlines():
        if line.startswith(label + ":"):
            found = line[len(label) + 1:].strip()
    return found
