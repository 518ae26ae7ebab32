"""``openai-compatible``: a text model served over HTTP by vLLM (or any server that speaks
the OpenAI completions / chat-completions API).

The spec's ``source`` is the served model name; its options say where the server is::

    {"backend": "openai-compatible", "source": "smollm2",
     "options": {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "VLLM_API_KEY",
                 "chat": true, "max_concurrency": 8, "timeout_s": 60, "retries": 3}}

The API key is read from the named environment variable at call time, so it is never part
of a spec, a request hash or a record.

* ``generate`` sends one request per prompt, concurrently (the server batches them; the
  pool does not merge served requests), at most ``max_concurrency`` in flight per model.
  Chat messages go to ``/v1/chat/completions`` (the server applies its chat template),
  plain text to ``/v1/completions``. Token log-probs and the top-1 log-prob of each step are
  asked for; a server that returns none gives ``None`` (absent), never 0.
* ``score`` must equal what ``transformers-lm`` computes on the same weights, so it mirrors
  ``TransformersLM.score`` token for token: the server's ``/tokenize`` (vLLM) turns the
  prompt (chat template applied, generation prompt added, no special tokens) and each
  option (separately, no special tokens) into ids; one ``/v1/completions`` request with
  the concatenated ids, ``echo`` and ``logprobs`` returns every prompt token's log-prob,
  and the option's last tokens are summed. Tokenizing ``prompt + option`` as one text
  instead would let BPE merge across the boundary and score different tokens.
* ``params.json_schema`` constrains decoding (vLLM's ``structured_outputs`` on completions,
  ``response_format`` on chat). Whether JSON may hold free whitespace is a vLLM *server*
  setting: a small model fills it until the token limit, so ``.ci/vllm-server`` starts
  vLLM with ``--structured-outputs-config`` ``{"backend": "xgrammar",
  "disable_any_whitespace": true}``, as ``transformers-lm`` compiles its grammars.
* ``hidden_states`` / ``embed`` read ``/v1/embeddings`` of a *pooling* server (vLLM:
  ``--runner pooling --convert embed --pooler-config '{"pooling_type": "MEAN",
  "use_activation": false}'``, which ``.ci/vllm-server start-pooling`` passes): the last
  layer's states after the final norm, mean-pooled over the text's tokens — the numbers
  ``models/hidden.py`` computes in-process for layer ``None``. A server exposes no other
  layer, so a request for layer k is refused in one line; ``embed`` L2-normalises them.
* Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential
  backoff (tenacity); the count lands in the call's recorded stats. Anything else the
  server refuses is a one-line :class:`~tinmen.errors.ServerRefusedError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tinmen.models.protocols import TOP_K, GenerateParams, Generation, Prompt, report_retries
from tinmen.models.registry import missing_dependency
from tinmen.models.spec import ModelSpec, validated_model

from tinmen.errors import ConfigError, ServedModelError, ServerRefusedError

try:
    import httpx
    import tenacity
except ModuleNotFoundError as exc:  # pragma: no cover - both are dependencies
    raise missing_dependency(exc.name or "httpx", "backend 'openai-compatible'") from exc

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class ServedOptions(BaseModel):
    """The ``options`` of an ``openai-compatible`` spec, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(pattern=r"^https?://", description="The server's API root, "
                          "e.g. 'http://127.0.0.1:8000/v1'.")
    api_key_env: str | None = Field(default=None, description="Environment variable that "
                                    "holds the API key (read per call, never stored).")
    chat: bool = Field(default=True, description="Send chat prompts to the chat endpoint "
                       "(server-side template); false renders them as 'role: text' lines.")
    max_concurrency: int = Field(default=8, ge=1, le=1024,
                                 description="Requests in flight to the server at once.")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Per request attempt.")
    retries: int = Field(default=3, ge=0, le=1000,
                         description="Retries of a transient failure before giving up.")
    backoff_s: float = Field(default=0.5, ge=0, le=60,
                             description="First retry wait; doubles per retry, at most 8 s.")

    @property
    def server_root(self) -> str:
        """Where vLLM's non-OpenAI endpoints (``/tokenize``) live: the URL without ``/v1``."""
        root = self.base_url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    @classmethod
    def of_spec(cls, spec: ModelSpec) -> ServedOptions:
        return validated_model(cls, spec.options, f"options of served model '{spec.name}'")


class _Transient(Exception):
    """A response worth retrying (429, 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {_server_message(response)}")


class OpenAICompatible:
    """TextGenerator over an OpenAI-compatible HTTP server; see the module docstring."""

    server_batches = True  # the pool sends concurrent requests as they are, never merged

    def __init__(self, client: httpx.Client, model: str, options: ServedOptions,
                 name: str | None = None) -> None:
        self.client = client
        self.model = model
        self.options = options
        self.name = name or model
        self._slots = threading.BoundedSemaphore(options.max_concurrency)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> OpenAICompatible:
        if not spec.source:
            raise ConfigError(f"served model '{spec.name}' needs source = the server's model "
                              "name (vLLM's --served-model-name)")
        options = ServedOptions.of_spec(spec)
        limits = httpx.Limits(max_connections=options.max_concurrency)
        client = httpx.Client(base_url=options.base_url, timeout=options.timeout_s,
                              limits=limits)
        return cls(client, spec.source, options, name=spec.name)

    # -- Backend: a served model holds no local weights -----------------------------
    def nbytes(self) -> int:
        return 0

    def device(self) -> str:
        return "served"

    def to_device(self, device: str) -> None:
        return None  # the server places its own weights

    def close(self) -> None:
        self.client.close()

    # -- TextGenerator ----------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], params: GenerateParams,
                 seeds: Sequence[int]) -> list[Generation]:
        jobs = list(zip(prompts, seeds, strict=True))
        results = self._parallel(lambda job: self._generate_one(job[0], params, job[1]), jobs)
        report_retries(sum(retries for _, retries in results))
        return [gen for gen, _ in results]

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        """Sum of log-probs of each option's tokens after the (templated) prompt, with the
        token boundaries ``transformers-lm`` uses (see the module docstring)."""
        scores, retries = self._score_one(prompt, options)
        report_retries(retries)
        return scores

    def score_batch(self, prompts: Sequence[Prompt], options: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        """``score`` for many requests, sent concurrently."""
        results = self._parallel(lambda job: self._score_one(*job),
                                 list(zip(prompts, options, strict=True)))
        report_retries(sum(retries for _, retries in results))
        return [scores for scores, _ in results]

    # -- HiddenStates / Embedder: a pooling server's last layer ------------------------
    def hidden_states(self, texts: Sequence[str], layers: Sequence[int | None],
                      batch_size: int) -> Any:
        """(len(layers), len(texts), width) float32: each text's mean-pooled last-layer
        state from ``/v1/embeddings`` (see the module docstring); only layer ``None``."""
        import numpy as np

        inner = [layer for layer in layers if layer is not None]
        if inner:
            raise ConfigError(f"served model '{self.name}' gives only its last layer's pooled "
                              f"states (/v1/embeddings), not layer {inner[0]}: name the served "
                              "spec itself as the rung (SPEC, not a layer number or SPEC@k)")
        pooled = np.asarray(self._pooled(texts, batch_size), dtype=np.float32)
        return np.stack([pooled] * len(layers))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text (the pooled states of ``hidden_states``)."""
        import numpy as np

        vectors = np.asarray(self._pooled(texts, 32), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1.0, norms)).tolist()

    def _pooled(self, texts: Sequence[str], batch_size: int) -> list[list[float]]:
        chunks = [list(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        results = self._parallel(self._embed_chunk, chunks)
        report_retries(sum(retries for _, retries in results))
        return [vector for rows, _ in results for vector in rows]

    def _embed_chunk(self, texts: list[str]) -> tuple[list[list[float]], int]:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        data, retries = self._post("/embeddings", body, "embeddings (pooled states)",
                                   missing="has no /v1/embeddings endpoint: hidden states "
                                   "need a pooling server (vLLM --runner pooling)")
        rows = sorted(data.get("data") or [], key=lambda r: r.get("index", 0))
        if len(rows) != len(texts):
            raise ServerRefusedError(f"served model '{self.name}' answered {len(rows)} "
                                     f"embeddings for {len(texts)} texts")
        return [[float(x) for x in row["embedding"]] for row in rows], retries

    # -- generation -------------------------------------------------------------------
    def _generate_one(self, prompt: Prompt, params: GenerateParams, seed: int
                      ) -> tuple[Generation, int]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature, "top_p": params.top_p,
                                "seed": int(seed)}
        if params.stop:
            body["stop"] = list(params.stop)
        if isinstance(prompt, list) and self.options.chat:
            body.update(messages=prompt, logprobs=True, top_logprobs=TOP_K)
            if params.json_schema is not None:
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "output", "schema": params.json_schema, "strict": True}}
            data, retries = self._post("/chat/completions", body, "generate (chat)")
            return chat_generation(_first_choice(data)), retries
        body.update(prompt=self._text(prompt), logprobs=TOP_K)
        if params.json_schema is not None:
            body["structured_outputs"] = {"json": params.json_schema}  # vLLM's field
        data, retries = self._post("/completions", body, "generate")
        return completion_generation(_first_choice(data)), retries

    def _text(self, prompt: Prompt) -> str:
        """A prompt as completion text; chat messages only where ``chat`` is off, rendered
        like ``transformers-lm`` renders them for a tokenizer without a chat template."""
        if isinstance(prompt, str):
            return prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in prompt) + "\nassistant:"

    # -- scoring ----------------------------------------------------------------------
    def _score_one(self, prompt: Prompt, options: Sequence[str]) -> tuple[list[float], int]:
        prefix, retries = self._prompt_ids(prompt)
        conts = []
        for option in options:
            ids, more = self._tokenize({"prompt": option, "add_special_tokens": False})
            conts.append(ids)
            retries += more
        if not prefix or any(not c for c in conts):
            raise ConfigError("score() needs a non-empty prompt and non-empty options")
        body = {"model": self.model, "prompt": [prefix + c for c in conts], "max_tokens": 1,
                "temperature": 0.0, "echo": True, "logprobs": 1}
        data, more = self._post("/completions", body, "score (prompt log-probs)")
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(conts):
            raise ServerRefusedError(f"served model '{self.name}' answered {len(choices)} "
                                     f"choices for {len(conts)} scored options")
        return [self._option_logprob(ch, len(prefix), len(c))
                for ch, c in zip(choices, conts, strict=True)], retries + more

    def _prompt_ids(self, prompt: Prompt) -> tuple[list[int], int]:
        if isinstance(prompt, list) and self.options.chat:
            return self._tokenize({"messages": prompt, "add_generation_prompt": True,
                                   "add_special_tokens": False})
        return self._tokenize({"prompt": self._text(prompt), "add_special_tokens": False})

    def _tokenize(self, request: dict[str, Any]) -> tuple[list[int], int]:
        url = f"{self.options.server_root}/tokenize"
        data, retries = self._post(url, {"model": self.model, **request}, "tokenize",
                                   missing="has no /tokenize endpoint (vLLM has one): "
                                   "option scoring needs the server's own tokenizer")
        return [int(t) for t in data["tokens"]], retries

    def _option_logprob(self, choice: dict[str, Any], start: int, length: int) -> float:
        lps = (choice.get("logprobs") or {}).get("token_logprobs")
        picked = lps[start:start + length] if lps else []
        if len(picked) != length or any(lp is None for lp in picked):
            raise ServerRefusedError(f"served model '{self.name}' at {self.options.base_url} "
                                     "returns no prompt log-probs (echo + logprobs): it cannot "
                                     "score options")
        return float(sum(picked))

    # -- HTTP -------------------------------------------------------------------------
    def _parallel(self, work: Any, jobs: list[Any]) -> list[Any]:
        """Run ``work`` over ``jobs`` concurrently: the server batches, not the pool."""
        if len(jobs) <= 1:
            return [work(job) for job in jobs]
        workers = min(len(jobs), self.options.max_concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="served") as ex:
            return list(ex.map(work, jobs))

    def _post(self, path: str, body: dict[str, Any], what: str,
              missing: str | None = None) -> tuple[dict[str, Any], int]:
        """POST with retries of transient failures; (JSON answer, retries it took)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Transient)),
            stop=tenacity.stop_after_attempt(self.options.retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.options.backoff_s, max=8),
            reraise=False)
        try:
            response = retrying(self._send, path, body)
        except tenacity.RetryError as exc:
            attempts = exc.last_attempt.attempt_number
            cause = exc.last_attempt.exception()
            raise ServedModelError(
                f"served model '{self.name}' at {self.options.base_url} failed ({what}) after "
                f"{attempts} attempts ({attempts - 1} retries): {_one_line(cause)}",
                retries=attempts - 1) from cause
        retries = int(retrying.statistics.get("attempt_number", 1)) - 1
        if response.status_code >= 400:
            raise self._refused(response, what, missing)
        try:
            return response.json(), retries
        except ValueError as exc:
            raise ServedModelError(f"served model '{self.name}' answered {what} with "
                                   f"non-JSON: {response.text[:80]!r}") from exc

    def _send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        with self._slots:
            response = self.client.post(path, json=body, headers=self._headers())
        if response.status_code in TRANSIENT_STATUS:
            raise _Transient(response)
        return response

    def _headers(self) -> dict[str, str]:
        env = self.options.api_key_env
        if env is None:
            return {}
        key = os.environ.get(env)
        if not key:
            raise ConfigError(f"served model '{self.name}' reads its API key from ${env}, "
                              "which is not set")
        return {"Authorization": f"Bearer {key}"}

    def _refused(self, response: httpx.Response, what: str,
                 missing: str | None) -> ServerRefusedError:
        where = f"served model '{self.name}' at {self.options.base_url}"
        if response.status_code == 404 and missing:
            return ServerRefusedError(f"{where} {missing}")
        return ServerRefusedError(f"{where} refused {what}: HTTP {response.status_code}: "
                                  f"{_server_message(response)}")


# ------------------------------------------------------------------ response parsing
def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices") or []
    if not choices:
        raise ServerRefusedError("the served model answered with no choices")
    return choices[0]


def completion_generation(choice: dict[str, Any]) -> Generation:
    """A ``/v1/completions`` choice as a Generation; log-probs ``None`` where it has none."""
    text, finish = choice.get("text") or "", _finish(choice)
    logprobs = choice.get("logprobs")
    if not logprobs or logprobs.get("token_logprobs") is None:
        return Generation(text=text, token_logprobs=None, top1_logprobs=None,
                          finish_reason=finish)
    lps = [float(lp) for lp in logprobs["token_logprobs"]]
    tops = logprobs.get("top_logprobs") or [None] * len(lps)
    ranked = [_top_k(lp, (top or {}).values()) for lp, top in zip(lps, tops, strict=True)]
    return Generation(text=text, tokens=tuple(logprobs.get("tokens") or ()),
                      token_logprobs=tuple(lps), top1_logprobs=tuple(r[0] for r in ranked),
                      finish_reason=finish,
                      topk_logprobs=tuple(ranked) if any(tops) else None)


def chat_generation(choice: dict[str, Any]) -> Generation:
    """A ``/v1/chat/completions`` choice as a Generation; log-probs ``None`` where absent."""
    text, finish = (choice.get("message") or {}).get("content") or "", _finish(choice)
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return Generation(text=text, token_logprobs=None, top1_logprobs=None,
                          finish_reason=finish)
    lps = [float(step["logprob"]) for step in content]
    ranked = [_top_k(lp, (t["logprob"] for t in step.get("top_logprobs") or ()))
              for lp, step in zip(lps, content, strict=True)]
    has_top = any(step.get("top_logprobs") for step in content)
    return Generation(text=text, tokens=tuple(step["token"] for step in content),
                      token_logprobs=tuple(lps), top1_logprobs=tuple(r[0] for r in ranked),
                      finish_reason=finish, topk_logprobs=tuple(ranked) if has_top else None)


def _top_k(chosen: float, alternatives: Any) -> tuple[float, ...]:
    """The ``TOP_K`` largest log-probs of one step, best first (the chosen token's among
    them where it ranks: a server lists the top alternatives and the sampled token)."""
    values = [float(v) for v in alternatives]
    if not any(abs(v - chosen) < 1e-9 for v in values):  # sampled outside the listed top
        values.append(float(chosen))
    return tuple(sorted(values, reverse=True)[:TOP_K])


def _finish(choice: dict[str, Any]) -> str:
    return str(choice.get("finish_reason") or "stop")


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text[:200])
    error = data.get("error", data) if isinstance(data, dict) else data
    message = error.get("message", error) if isinstance(error, dict) else error
    return _one_line(str(message)[:300])


def _one_line(value: object) -> str:
    text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(value)
    return " ".join(text.split())
