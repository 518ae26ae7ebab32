"""A family of instructions whose answers a program can check, and the oracle that scores them.

Self-rewarding papers measure progress with humans or GPT-4 (AlpacaEval). Here every
instruction has one correct answer that a rule computes, so an *oracle judge* can score
any response on the same additive 5-point rubric the model is asked to apply (Yuan et al.
2024, Fig. 2), and quality is measurable on one CPU.

Rubric (points are cumulative: a point counts only if every earlier one was earned):

1. relevant   – non-empty, with a character of the answer's kind (a digit, a letter...);
2. format     – has the answer's shape (digits separated by single spaces, a word, a number);
3. substance  – the basic elements are right (same digits / letters, count off by ≤ 1, ...);
4. correct    – equals the answer once surrounding whitespace is ignored;
5. impeccable – exactly the answer, nothing extraneous.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["sort", "reverse", "count", "upper", "repeat"]
KINDS: tuple[Kind, ...] = ("sort", "reverse", "count", "upper", "repeat")
LETTERS = "abcdefgh"  # a small alphabet keeps the tiny model's task learnable
MAX_SCORE = 5


class Task(BaseModel):
    """One instruction with its programmatically known answer."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Kind
    instruction: str
    answer: str


# --------------------------------------------------------------------------- generation
def _word(rng: random.Random, lo: int = 3, hi: int = 5) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))


def make_task(kind: Kind, rng: random.Random, ident: str) -> Task:
    """Draw one instance of ``kind``."""
    if kind == "sort":
        digits = [str(rng.randint(0, 9)) for _ in range(rng.randint(3, 4))]
        return Task(id=ident, kind=kind, instruction="sort " + " ".join(digits),
                    answer=" ".join(sorted(digits)))
    if kind == "reverse":
        word = _word(rng)
        return Task(id=ident, kind=kind, instruction=f"reverse {word}", answer=word[::-1])
    if kind == "count":
        word, letter = _word(rng, 4, 6), rng.choice(LETTERS[:4])
        return Task(id=ident, kind=kind, instruction=f"count {letter} in {word}",
                    answer=str(word.count(letter)))
    if kind == "upper":
        word = _word(rng)
        return Task(id=ident, kind=kind, instruction=f"upper {word}", answer=word.upper())
    letter, n = rng.choice(LETTERS), rng.randint(2, 5)
    return Task(id=ident, kind=kind, instruction=f"repeat {letter} {n}", answer=letter * n)


def make_tasks(n: int, seed: int, prefix: str = "task") -> list[Task]:
    """``n`` tasks cycling through every kind, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [make_task(KINDS[i % len(KINDS)], rng, f"{prefix}-{seed}-{i}") for i in range(n)]


# --------------------------------------------------------------------------- oracle
_CLASSES: dict[str, set[str]] = {"sort": set("0123456789"), "count": set("0123456789"),
                                  "reverse": set(LETTERS), "repeat": set(LETTERS),
                                  "upper": set(LETTERS.upper())}
_FORMATS: dict[str, str] = {"sort": r"\d( \d)*", "reverse": r"[a-z]+", "count": r"\d+",
                            "upper": r"[A-Z]+", "repeat": r"([a-z])\1*"}


def _substance(task: Task, text: str) -> bool:
    """The rubric's third point: the basic elements of the answer are present."""
    if task.kind in ("sort", "reverse"):
        return Counter(text.replace(" ", "")) == Counter(task.answer.replace(" ", ""))
    if task.kind == "count":
        return abs(int(text) - int(task.answer)) <= 1
    if task.kind == "upper":
        return len(text) == len(task.answer)
    return text[0] == task.answer[0] and abs(len(text) - len(task.answer)) <= 1


def oracle_points(task: Task, response: str) -> list[bool]:
    """Which of the five rubric criteria ``response`` meets (before the cumulative rule)."""
    text = response.strip()
    relevant = bool(text) and bool(set(text) & (set(task.answer) | _CLASSES[task.kind]))
    formatted = re.fullmatch(_FORMATS[task.kind], text) is not None
    substance = formatted and _substance(task, text)
    return [relevant, formatted, substance, text == task.answer, response == task.answer]


def oracle_score(task: Task, response: str) -> int:
    """Additive 0–5 score: the number of leading rubric criteria met."""
    score = 0
    for met in oracle_points(task, response):
        if not met:
            break
        score += 1
    return score


# --------------------------------------------------------------------------- corruptions
def _wrong_format(task: Task, rng: random.Random) -> str:
    return task.answer.replace(" ", "") + "," if task.kind == "sort" else task.answer + "."


def _wrong_content(task: Task, rng: random.Random) -> str:
    if task.kind == "sort":
        return " ".join(str(rng.randint(0, 9)) for _ in task.answer.split())
    if task.kind == "count":
        return str((int(task.answer) + rng.randint(2, 4)) % 10)
    if task.kind == "upper":
        return task.answer + rng.choice("ABC")
    if task.kind == "repeat":
        return task.answer[0] * (len(task.answer) + 2 + rng.randint(0, 2))
    return "".join(rng.choice(LETTERS) for _ in task.answer)


def _partial(task: Task, rng: random.Random) -> str:
    if task.kind == "sort":
        parts = task.answer.split()
        rng.shuffle(parts)
        return " ".join(parts)
    if task.kind == "count":
        return str(int(task.answer) + rng.choice((-1, 1)) if task.answer != "0" else 1)
    if task.kind == "upper":
        return "".join(rng.choice("ABCDEFGH") for _ in task.answer)
    if task.kind == "repeat":
        return task.answer + task.answer[0]
    return "".join(sorted(task.answer))


def near_miss(task: Task, rng: random.Random) -> str:
    """The answer with one unit replaced, dropped or added: a typical policy slip."""
    units = task.answer.split() if task.kind == "sort" else list(task.answer)
    pool = sorted(_CLASSES[task.kind])
    i, op = rng.randrange(len(units)), rng.randrange(3)
    if op == 0:
        units[i] = rng.choice(pool)
    elif op == 1 and len(units) > 1:
        del units[i]
    else:
        units.insert(i, rng.choice(pool))
    return (" " if task.kind == "sort" else "").join(units)


CORRUPTIONS: dict[int, Callable[[Task, random.Random], str]] = {
    0: lambda t, r: "",
    1: _wrong_format,
    2: _wrong_content,
    3: _partial,
    4: lambda t, r: t.answer + " ",
    5: lambda t, r: t.answer,
}


def corrupt(task: Task, target: int, rng: random.Random) -> str:
    """A response aimed at oracle score ``target``; the oracle decides what it really gets."""
    return CORRUPTIONS[target](task, rng)


def judge_training_response(task: Task, rng: random.Random) -> str:
    """A response for a judge-training example: a rubric-level corruption or a near miss."""
    if rng.random() < 0.4:
        return near_miss(task, rng)
    return corrupt(task, rng.randint(0, MAX_SCORE), rng)


def graded_responses(task: Task, rng: random.Random, n: int = 4) -> list[str]:
    """``n`` distinct responses to ``task`` spread over the rubric (for a judge test set)."""
    targets = rng.sample(range(MAX_SCORE + 1), k=min(n, MAX_SCORE + 1))
    seen: dict[str, None] = {}
    for target in targets:
        seen.setdefault(corrupt(task, target, rng), None)
    return list(seen)


_PATTERNS: dict[str, str] = {"sort": r"sort ((?:\d )*\d)", "reverse": r"reverse ([a-z]+)",
                             "count": r"count ([a-z]) in ([a-z]+)", "upper": r"upper ([a-z]+)",
                             "repeat": r"repeat ([a-z]) (\d+)"}


def _answer(kind: str, groups: tuple[str, ...]) -> str:
    if kind == "sort":
        return " ".join(sorted(groups[0].split()))
    if kind == "reverse":
        return groups[0][::-1]
    if kind == "count":
        return str(groups[1].count(groups[0]))
    if kind == "upper":
        return groups[0].upper()
    return groups[0] * int(groups[1])


def task_from_instruction(text: str, ident: str = "parsed") -> Task | None:
    """Rebuild the task (and so its answer) from an instruction's text, if it is one of ours."""
    for kind, pattern in _PATTERNS.items():
        found = re.search(pattern, text)
        if found is not None:
            return Task(id=ident, kind=kind, instruction=found.group(0),
                        answer=_answer(kind, found.groups()))
    return None
