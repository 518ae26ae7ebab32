"""Reading the chosen product out of a free-text answer: the paper's regex and a robust parse.

The paper lower-cases the answer and takes the first number after ``choice:`` on the same
line (``re.search(r"choice:.*?([0-9]+)")``); an answer without such a line is lost. Small
models often write ``**Choice:** 2``, ``Choice: Tesla model 3``, put the number on the next
line, or never write a choice line at all. The robust parse tries, in order: a choice
phrase followed by a product id or a product name; a purchase verb followed by one; a single
product id mentioned; a single product named. Anything else is *unparsed* and counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PAPER_REGEX = re.compile(r"choice:.*?([0-9]+)")
_CHOICE = re.compile(r"\bchoice\b|\bchose\b|\bchoosing\b", re.IGNORECASE)
_NUMBER_AFTER = re.compile(
    r"^(?:\s|[*_:#\-=>\[\(\"'`]|is\b|was\b|will be\b|would be\b|product\b|item\b|option\b"
    r"|id\b|number\b|no\.)*(\d+)(?!\d)(?![,.]\d)", re.IGNORECASE)
_VERB = re.compile(r"\b(?:purchas\w*|buy\w*|bought|rent\w*|recommend\w*|select\w*|"
                   r"go(?:ing)? with|opt(?:ed)? for|decided? on)\b", re.IGNORECASE)
_PRODUCT_ID = re.compile(r"\b(?:product|item|option)\s*(?:id|number|no\.?)?\s*[:#]?\s*(\d+)"
                         r"(?!\d)(?![,.]\d)", re.IGNORECASE)
_NEGATION = re.compile(r"(?:\bnot|\bnever|\bcannot|n't|\brefuse to|\bunable to)\W*"
                       r"(?:\w+\W+)?$", re.IGNORECASE)
_EXPLANATION = re.compile(r"explanation\W{0,4}:", re.IGNORECASE)
_WINDOW = 80  # characters after a choice phrase or verb that may name the product


@dataclass(frozen=True)
class Parsed:
    """A product label read from text, how it was found, and where (for the span's NLL)."""

    label: int | None
    method: str | None = None
    start: int | None = None
    end: int | None = None

    @property
    def ok(self) -> bool:
        return self.label is not None


def paper_parse(text: str) -> int | None:
    """The paper's parse: first number after ``choice:`` on its line, or None."""
    match = PAPER_REGEX.search(text.lower())
    return int(match.group(1)) if match else None


def _window(text: str, end: int) -> str:
    """Text after a phrase: the rest of its line, or the next line if the rest is blank."""
    rest = text[end:end + _WINDOW]
    line, _, after = rest.partition("\n")
    return line if line.strip(" *_:#-") else (line + "\n" + after.partition("\n")[0])


def _named(window: str, keywords: Sequence[Sequence[str]]) -> tuple[int, int, int] | None:
    """(label, start, end) of the first product named in ``window``."""
    low = window.lower()
    hits = [(low.find(k), label, len(k)) for label, words in enumerate(keywords, start=1)
            for k in words if k in low]
    if not hits:
        return None
    pos, label, size = min(hits)
    return label, pos, pos + size


def _after(text: str, pattern: re.Pattern[str], keywords: Sequence[Sequence[str]],
           method: str) -> Parsed | None:
    n = len(keywords)
    for match in pattern.finditer(text):
        before = re.split(r"[\n.!?]", text[max(0, match.start() - 24):match.start()])[-1]
        if method == "verb" and _NEGATION.search(before):
            continue  # "I cannot rent the propaganda film" names what is *not* chosen
        window = _window(text, match.end())
        number = _NUMBER_AFTER.match(window)
        if number and 1 <= int(number.group(1)) <= n:
            return Parsed(int(number.group(1)), method, match.start(),
                          match.end() + number.end(1))
        named = _named(window, keywords)
        if named:
            return Parsed(named[0], method, match.start(), match.end() + named[2])
    return None


def robust_parse(text: str, keywords: Sequence[Sequence[str]]) -> Parsed:
    """The label (1-based, as shown in the prompt) chosen in ``text``; see the module doc.

    ``keywords[i]`` are lower-case names of the product shown with label ``i + 1``.
    """
    for pattern, method in ((_CHOICE, "choice"), (_VERB, "verb")):
        found = _after(text, pattern, keywords, method)
        if found:
            return found
    ids = {int(m.group(1)): m for m in _PRODUCT_ID.finditer(text)
           if 1 <= int(m.group(1)) <= len(keywords)}
    if len(ids) == 1:
        (label, m), = ids.items()
        return Parsed(label, "product-id", m.start(), m.end())
    named = {label for label, words in enumerate(keywords, start=1)
             if any(k in text.lower() for k in words)}
    if len(named) == 1 and not ids:
        label = named.pop()
        hit = _named(text, [keywords[label - 1]])
        assert hit is not None
        return Parsed(label, "name", hit[1], hit[2])
    return Parsed(None)


def explanation_of(text: str, parsed: Parsed) -> str:
    """The explanation part of an answer: after ``Explanation:``, before the choice phrase."""
    body = prefix_before_choice(text, parsed)
    label = _EXPLANATION.search(body)
    return (body[label.end():] if label else body).strip(" \n*_#")


def prefix_before_choice(text: str, parsed: Parsed) -> str:
    """The answer up to its choice line (the whole answer when it has none)."""
    if parsed.method == "choice" and parsed.start is not None:
        line_start = text.rfind("\n", 0, parsed.start) + 1
        return text[:line_start] if text[line_start:parsed.start].strip(" *_#") == "" \
            else text[:parsed.start]
    return text


def span_nll(text: str, tokens: Sequence[str], logprobs: Sequence[float],
             start: int, end: int) -> float | None:
    """Realized NLL of the tokens that overlap ``text[start:end]``; None if none align.

    Tokens are located in ``text`` left to right (tokenisers differ in how they mark
    spaces), so the sum covers exactly the generated tokens that wrote the span.
    """
    pos, total, hit = 0, 0.0, False
    for token, lp in zip(tokens, logprobs):
        piece = token.strip()
        if not piece:
            continue
        idx = text.find(piece, pos)
        if idx < 0:
            continue
        pos = idx + len(piece)
        if idx < end and pos > start:
            total, hit = total - float(lp), True
    return total if hit else None
