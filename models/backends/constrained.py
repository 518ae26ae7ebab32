"""JSON-schema constrained decoding with xgrammar (optional dependency).

Small models asked for JSON ramble to the token limit; a grammar mask makes every output
valid. Per DESIGN.md: a fresh processor per ``generate`` call, the schema compiled without
free whitespace (it otherwise doubles the tokens), and bounded schemas (maxItems/maxLength).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tinmen.models.registry import missing_dependency


@lru_cache(maxsize=8)
def _compiler(tokenizer: Any, vocab_size: int) -> Any:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    return xgr.GrammarCompiler(info)


def schema_processor(tokenizer: Any, schema: dict[str, Any], batch: int,
                     vocab_size: int) -> Callable[[Any, Any], Any]:
    """A ``(input_ids, logits) -> masked logits`` callable for one batched generate call."""
    try:
        from xgrammar.contrib.hf import LogitsProcessor
    except ModuleNotFoundError as exc:
        raise missing_dependency("xgrammar", "constrained JSON decoding") from exc
    compiled = _compiler(tokenizer, vocab_size).compile_json_schema(
        json.dumps(schema), any_whitespace=False)
    return LogitsProcessor([compiled] * batch)
