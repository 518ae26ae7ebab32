"""``vqa-scorer``: VQAScore of (image, text) pairs from any local visual-question-answering model.

VQAScore (Lin et al., 2024) asks a VQA model 'Does this figure show "{text}"? Please answer
yes or no.' and reads P("Yes") from its next-token distribution — no sampling, no parsing of
what it writes. Two families load from a local folder (nothing is downloaded), picked by the
folder's config:

* BLIP VQA (``model_type`` ``blip``, ``BlipForQuestionAnswering`` + its processor): the answer
  decoder's first-step distribution after its start token (BLIP's processor pads on the right;
  the question encoder is batched, the answer decoder runs once per question length because
  its cross-attention ignores the padding mask);
* any image-text-to-text chat model (``AutoModelForImageTextToText`` + ``AutoProcessor``:
  LLaVA, Qwen2-VL, SmolVLM, …): the distribution after the chat template's assistant turn
  (the bare question when the processor has no template).

All spellings of the answer the tokenizer knows ("yes", "Yes", " yes", " Yes") count as yes,
likewise for no. Pairs are scored in one forward pass per ``batch_size`` of them.

Options: ``question`` (template with ``{text}``), ``normalize`` — ``yes_no`` (default:
P(yes) / (P(yes) + P(no))) or ``vocab`` (P(yes) over the whole vocabulary), ``batch_size``
(default 16).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from tinmen.models.backends.transformers_lm import DTYPES, TorchModuleBackend, pick_device
from tinmen.models.registry import missing_dependency
from tinmen.models.remote_code import code_options, load_options
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

QUESTION = 'Does this figure show "{text}"? Please answer yes or no.'
YES, NO = ("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No")
NORMALIZE = ("yes_no", "vocab")


def answer_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """First token id of each spelling of an answer word (deduplicated, unknowns dropped)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = set()
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if encoded and encoded[0] != unk:
            ids.add(int(encoded[0]))
    return sorted(ids)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else repr(exc)


class VQAScorer(TorchModuleBackend):
    """ImageTextScorer returning VQAScore per pair; see the module docstring."""

    def __init__(self, model: Any, processor: Any, device: str = "cpu",
                 question: str = QUESTION, normalize: str = "yes_no",
                 batch_size: int = 16) -> None:
        if normalize not in NORMALIZE:
            raise ConfigError(f"vqa-scorer option normalize must be one of {NORMALIZE}, not "
                              f"'{normalize}'")
        if "{text}" not in question:
            raise ConfigError("vqa-scorer option question must contain {text}")
        if batch_size < 1:
            raise ConfigError(f"vqa-scorer option batch_size must be >= 1, not {batch_size}")
        self.model, self.processor = model.eval(), processor
        self._device, self.question, self.normalize = device, question, normalize
        self.batch_size = batch_size
        self.blip = type(model).__name__ == "BlipForQuestionAnswering"
        self.tokenizer = getattr(processor, "tokenizer", processor)
        # BLIP reads each question's first `length` tokens, chat models their last token
        self.tokenizer.padding_side = "right" if self.blip else "left"
        self.yes_ids, self.no_ids = answer_ids(self.tokenizer, YES), answer_ids(self.tokenizer, NO)
        if not self.yes_ids or not self.no_ids:
            raise ConfigError(f"the tokenizer of {type(model).__name__} has no token for "
                              "'yes' or 'no'; vqa-scorer cannot read its answer")
        params = inspect.signature(model.forward).parameters
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> VQAScorer:
        try:
            import transformers
        except ModuleNotFoundError as exc:
            raise missing_dependency("transformers", f"backend '{spec.backend}'") from exc
        try:
            source = resolve_source(spec.source)
        except ConfigError as exc:
            raise ConfigError(f"cannot load VQA scorer '{spec.name}': {exc}") from exc
        local: dict[str, Any] = {"local_files_only": True}
        weights, code = load_options(spec), code_options(spec)  # no folder code, no pickles
        try:
            config = transformers.AutoConfig.from_pretrained(source, **local, **code)
            blip = config.model_type == "blip"
            archs = getattr(config, "architectures", None) or []
            if blip and archs and "BlipForQuestionAnswering" not in archs:
                raise ConfigError(f"cannot load VQA scorer '{spec.name}' from {source}: a BLIP "
                                  f"{'/'.join(archs)}, not a BlipForQuestionAnswering")
            processor = transformers.AutoProcessor.from_pretrained(source, **local, **code)
            family = (transformers.BlipForQuestionAnswering if blip
                      else transformers.AutoModelForImageTextToText)
            model = family.from_pretrained(source, dtype=DTYPES[spec.dtype], **local,
                                           **weights)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot load VQA scorer '{spec.name}' from {source}: "
                              f"{_first_line(exc)}") from exc
        device = pick_device(spec.device)
        return cls(model.to(device), processor, device,
                   question=str(spec.options.get("question", QUESTION)),
                   normalize=str(spec.options.get("normalize", "yes_no")),
                   batch_size=int(spec.options.get("batch_size", 16)))

    # -- scoring ----------------------------------------------------------------
    def next_token_logits(self, images: Sequence[Any], texts: Sequence[str]) -> torch.Tensor:
        """[pairs, vocab] logits of the answer's first token, all pairs in one forward pass.

        Differentiable (no inference mode here), so a test can train through it."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        questions = [self.question.format(text=t) for t in texts]
        rgb = [im.convert("RGB") for im in images]
        if self.blip:
            return self._blip_logits(rgb, questions)
        return self._chat_logits(rgb, questions)

    def _inputs(self, **kwargs: Any) -> dict[str, Any]:
        """Processor output on the model's device, floating tensors in the model's dtype."""
        batch = self.processor(return_tensors="pt", padding=True, **kwargs)
        dtype = self.model.dtype
        return {k: v.to(self._device, dtype) if v.is_floating_point() else v.to(self._device)
                for k, v in batch.items() if isinstance(v, torch.Tensor)}

    def _blip_logits(self, images: list[Any], questions: list[str]) -> torch.Tensor:
        inputs = self._inputs(images=images, text=questions)
        m = self.model
        seen = m.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        asked = m.text_encoder(input_ids=inputs["input_ids"],
                               attention_mask=inputs["attention_mask"],
                               encoder_hidden_states=seen,
                               encoder_attention_mask=torch.ones(seen.shape[:-1], dtype=torch.long,
                                                                 device=seen.device))[0]
        # The answer decoder's cross-attention drops its padding mask (transformers 5.x), so
        # it reads each question unpadded: one decoder pass per question length.
        lengths = inputs["attention_mask"].sum(-1)
        order, logits = [], []
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            start = torch.full((len(rows), 1), m.decoder_start_token_id, device=seen.device)
            out = m.text_decoder(input_ids=start, encoder_hidden_states=asked[rows, :length])
            order.append(rows)
            logits.append(out.logits[:, -1, :])
        return torch.cat(logits)[torch.cat(order).argsort()]

    def prompt(self, question: str) -> str:
        """The chat model's prompt: its chat template around one image and the question."""
        if not getattr(self.processor, "chat_template", None):
            token = getattr(self.processor, "image_token", None)
            return f"{token}{question}" if token else question
        chat = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(chat, add_generation_prompt=True,
                                                  tokenize=False)

    def _chat_logits(self, images: list[Any], questions: list[str]) -> torch.Tensor:
        inputs = self._inputs(images=images, text=[self.prompt(q) for q in questions])
        return self.model(**inputs, **self._keep_last).logits[:, -1, :]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """P(yes) per row of first-answer-token logits, normalised as configured."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        yes = logp[:, self.yes_ids].logsumexp(-1)
        if self.normalize == "vocab":
            return yes.exp()
        no = logp[:, self.no_ids].logsumexp(-1)
        return torch.sigmoid(yes - no)  # = P(yes) / (P(yes) + P(no)), stable in the tails

    def answer_probabilities(self, images: Sequence[Any], texts: Sequence[str]
                             ) -> list[tuple[float, float]]:
        """(P(yes), P(no)) over the whole vocabulary per pair — for inspection and tests."""
        with torch.inference_mode():
            logp = torch.log_softmax(self.next_token_logits(images, texts).float(), dim=-1)
            yes = logp[:, self.yes_ids].logsumexp(-1).exp().cpu().tolist()
            no = logp[:, self.no_ids].logsumexp(-1).exp().cpu().tolist()
        return list(zip(yes, no))

    @torch.inference_mode()
    def score_image_text(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        scores: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            logits = self.next_token_logits(images[i:i + self.batch_size],
                                            texts[i:i + self.batch_size])
            scores += self.probabilities(logits).cpu().tolist()
        return scores
