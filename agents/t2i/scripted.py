"""``scripted:t2i``: a deterministic stand-in for the parser, question writer and user.

It scores options by whether the conversation's text supports them (a value named in the
prompt gets almost all the mass; otherwise the options are equally likely) and answers a
question by repeating it, so the agent's whole pipeline runs with known outputs."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from tinmen.models.backends.scripted import prompt_text
from tinmen.models.protocols import GenerateParams, Prompt


class T2IPolicy:
    def respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str:
        text = prompt_text(prompt)
        asked = re.search(r"Question: (.*)", text)
        return asked.group(1).strip() if asked else "Which details matter most to you?"

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        words = set(re.findall(r"[a-z]+", prompt_text(prompt).lower().split("what")[0]))
        hits = [o.strip().lower() in words for o in options]
        if not any(hits):
            return [-math.log(len(options))] * len(options)
        return [math.log(0.97 / sum(hits)) if h else math.log(0.03) for h in hits]
