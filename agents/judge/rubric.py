"""The judge's prompt, the parsing of its verdict, and what a score distribution says.

Four prompt styles ask for the same additive 5-point rubric; the judge option
``judge_prompt`` picks *compact* (the first two) or *paper* (the last two), and the policy's
kind picks the frame:

* ``compact`` — a one-line frame the tiny from-scratch decoder was fine-tuned on
  (``J: <instruction>\\nR: <response>\\nScore:`` → `` 4``);
* ``rubric`` — Yuan et al.'s LLM-as-a-judge prompt, reworded for this task family, as a chat
  message for instruct models (SmolLM2 and larger), ending in ``Score: <points>``;
* ``paper`` — the same rubric with the paper's closing instructions: the judge first
  *briefly justifies* its total, then concludes with ``Score: <total points>`` (Yuan et al.,
  Fig. 2); the verdict is generated text and the score is parsed from it;
* ``paper-compact`` — the paper's order (justification, then ``Score: N``) in a frame short
  enough for the tiny decoder's 160-character context
  (``J: …\\nR: …\\nJustify:`` → `` relevant, shaped, not elements right.\\nScore: 2``), which
  its seed SFT teaches with justifications written from the oracle's rubric points.

With a justified style the score distribution is read *after* the judge's own
justification: each option is the justification followed by ``Score: N``, so the common
prefix cancels in the normalisation and what is scored is P(N | justification).

Following DESIGN.md, the score the loop relies on comes from the model's own distribution
over the allowed score continuations (continuation scoring through the pool), never only
from digits it writes; the sampled verdicts are parsed and averaged as in the paper.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from tinmen.agents.judge.tasks import MAX_SCORE, Task

Style = Literal["compact", "rubric", "paper", "paper-compact"]
JudgePrompt = Literal["compact", "paper"]
JUSTIFIED: tuple[str, ...] = ("paper", "paper-compact")
# the tiny judge's justification: the rubric points met, then the first one missed
POINT_NAMES = ("relevant", "shaped", "elements right", "correct", "exact")
SCORES: tuple[int, ...] = tuple(range(MAX_SCORE + 1))

RUBRIC = """Review the user's instruction and the response using the additive 5-point scoring \
system below. Points accumulate; award a point only if every earlier point was awarded:
- Add 1 point if the response is relevant: not empty and related to the instruction.
- Add a 2nd point if the response has the shape of an answer (e.g. digits separated by \
spaces for sorting, one word for reversing, one number for counting).
- Add a 3rd point if the basic elements are right (the same digits or letters, a count off \
by at most one).
- Add a 4th point if the answer is correct.
- Add a 5th point if it is exactly the answer with nothing extraneous.
User: {instruction}
<response>{response}</response>
After examining the instruction and the response, conclude with the score using the \
format: "Score: <total points>"."""

PAPER = RUBRIC.rsplit("After examining", 1)[0] + """After examining the user's instruction \
and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"."""

_SCORE_RE = re.compile(r"score\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def task_prompt(task: Task) -> str:
    """What the policy continues to answer ``task`` (the compact instruction frame)."""
    return f"Q: {task.instruction}\nA: "


def judge_prompt(task: Task, response: str, style: Style = "compact") -> Any:
    """The prompt that asks the judge to score ``response`` to ``task``."""
    if style == "compact":
        return f"J: {task.instruction}\nR: {response}\nScore:"
    if style == "paper-compact":
        return f"J: {task.instruction}\nR: {response}\nJustify:"
    template = PAPER if style == "paper" else RUBRIC
    return [{"role": "user", "content": template.format(instruction=task.instruction,
                                                        response=response)}]


def style_for(judge_prompt: JudgePrompt, tiny: bool) -> Style:
    """The prompt style of a policy: the tiny decoder gets the short frames."""
    if judge_prompt == "paper":
        return "paper-compact" if tiny else "paper"
    return "compact" if tiny else "rubric"


def score_options(style: Style = "compact", prefix: str = "") -> list[str]:
    """The continuations scored to get a distribution over 0..5 points (after ``prefix``,
    the judge's own justification, with a justified style)."""
    return [prefix + (f" {s}" if style == "compact" else f"Score: {s}") for s in SCORES]


def justification(points: Sequence[bool]) -> str:
    """The tiny judge's justification of a score: the rubric points met in order, then the
    first one missed (``relevant, shaped, not elements right.``)."""
    said = []
    for name, met in zip(POINT_NAMES, points):
        said.append(name if met else f"not {name}")
        if not met:
            break
    return ", ".join(said) + "."


def verdict_text(score: int, style: Style = "compact", points: Sequence[bool] = ()) -> str:
    """The tiny judge's target continuation for ``score`` (used in SFT): `` 4``, or with
    the paper prompt a justification first (`` relevant, … .\\nScore: 4``)."""
    if style == "paper-compact":
        return f" {justification(points)}\nScore: {score}"
    return f" {score}"


def verdict_prefix(verdict: str) -> str:
    """What a justified verdict says before its (last) score: the prefix the score options
    are scored after. A verdict with no score keeps all its text, on a line of its own."""
    found = list(_SCORE_AT.finditer(verdict))
    if found:
        return verdict[:found[-1].start()]
    text = verdict.rstrip()
    return f"{text}\n" if text else ""


_SCORE_AT = re.compile(r"score\s*[:=]", re.IGNORECASE)


def parse_score(text: str) -> int | None:
    """The last ``Score: N`` in a verdict (the rubric asks to conclude with it).

    A bare number is accepted too (the compact judge answers `` 4``). Returns ``None`` when
    no score is present or it is outside 0..5 or not a whole number.
    """
    found = _SCORE_RE.findall(text)
    if not found:
        found = re.findall(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*$", text)
    if not found:
        return None
    value = float(found[-1])
    if not value.is_integer() or not 0 <= value <= MAX_SCORE:
        return None
    return int(value)


def average_score(verdicts: Sequence[str]) -> float | None:
    """Mean of the parsable verdicts (Yuan et al. sample 3 and average); ``None`` if none."""
    scores = [s for s in (parse_score(v) for v in verdicts) if s is not None]
    return sum(scores) / len(scores) if scores else None


def normalise(logprobs: Sequence[float]) -> list[float]:
    """Softmax of option log-probs: the judge's distribution over scores."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def expected_score(probs: Sequence[float]) -> float:
    return sum(s * p for s, p in zip(SCORES, probs))


def entropy(probs: Sequence[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def prob_better(p: Sequence[float], q: Sequence[float]) -> float:
    """P(score_a > score_b) + ½ P(equal) for independent scores a ~ p, b ~ q.

    This is the generative judge's preference P_grm(a ≻ b) built from its two pointwise
    score distributions.
    """
    greater = sum(p[i] * q[j] for i in range(len(p)) for j in range(len(q)) if i > j)
    equal = sum(p[i] * q[i] for i in range(min(len(p), len(q))))
    return greater + 0.5 * equal
