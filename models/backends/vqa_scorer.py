"""``vqa-scorer``: VQAScore of (image, text) pairs from any local visual-question-answering model.

VQAScore (Lin et al., 2024) asks a VQA model 'Does this figure show "{text}"? Please answer
yes or no.' and reads P("Yes") from its next-token distribution — no sampling, no parsing of
what it writes. Two families load from a local folder (nothing is downloaded):

* BLIP VQA (``BlipForQuestionAnswering`` + its processor): the answer decoder's first-step
  distribution after its start token;
* any image-text-to-text chat model (``AutoModelForImageTextToText`` + ``AutoProcessor``:
  LLaVA, Qwen2-VL, SmolVLM, …): the distribution after the chat template's assistant turn.

Options: ``question`` (template with ``{text}``), ``normalize`` — ``yes_no`` (default:
P(yes) / (P(yes) + P(no))) or ``vocab`` (P(yes) over the whole vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tinmen.models.backends.transformers_lm import TorchModuleBackend, pick_device
from tinmen.models.registry import missing_dependency
from tinmen.models.sources import resolve_source
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

QUESTION = 'Does this figure show "{text}"? Please answer yes or no.'
YES, NO = ("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No")


def answer_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """First token id of each spelling of an answer word (deduplicated, unknowns dropped)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = {tokenizer.encode(w, add_special_tokens=False)[0] for w in words
           if tokenizer.encode(w, add_special_tokens=False)}
    return sorted(i for i in ids if i != unk)


class VQAScorer(TorchModuleBackend):
    """ImageTextScorer returning VQAScore per pair; see the module docstring."""

    def __init__(self, model: Any, processor: Any, device: str = "cpu",
                 question: str = QUESTION, normalize: str = "yes_no") -> None:
        if normalize not in ("yes_no", "vocab"):
            raise ConfigError(f"vqa-scorer option normalize must be yes_no or vocab, not "
                              f"'{normalize}'")
        if "{text}" not in question:
            raise ConfigError("vqa-scorer option question must contain {text}")
        self.model, self.processor = model.eval(), processor
        self._device, self.question, self.normalize = device, question, normalize
        self.blip = type(model).__name__ == "BlipForQuestionAnswering"
        tokenizer = getattr(processor, "tokenizer", processor)
        self.yes_ids, self.no_ids = answer_ids(tokenizer, YES), answer_ids(tokenizer, NO)
        if not self.yes_ids or not self.no_ids:
            raise ConfigError("the VQA model's tokenizer has no token for 'yes' or 'no'")

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> VQAScorer:
        try:
            import transformers
        except ModuleNotFoundError as exc:
            raise missing_dependency("transformers", f"backend '{spec.backend}'") from exc
        source = resolve_source(spec.source)
        try:
            config = transformers.AutoConfig.from_pretrained(source, local_files_only=True)
            processor = transformers.AutoProcessor.from_pretrained(source, local_files_only=True)
            if config.model_type == "blip":
                model = transformers.BlipForQuestionAnswering.from_pretrained(
                    source, local_files_only=True)
            else:
                model = transformers.AutoModelForImageTextToText.from_pretrained(
                    source, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot load VQA scorer '{spec.name}' from {source}: "
                              f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
        device = pick_device(spec.device)
        return cls(model.to(device), processor, device,
                   question=str(spec.options.get("question", QUESTION)),
                   normalize=str(spec.options.get("normalize", "yes_no")))

    # ------------------------------------------------------------------ scoring
    def next_token_logits(self, images: Sequence[Any], texts: Sequence[str]) -> torch.Tensor:
        """[pairs, vocab] logits of the answer's first token (differentiable)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        questions = [self.question.format(text=t) for t in texts]
        rgb = [im.convert("RGB") for im in images]
        if self.blip:
            return self._blip_logits(rgb, questions)
        return torch.cat([self._chat_logits(im, q) for im, q in zip(rgb, questions)])

    def _blip_logits(self, images: list[Any], questions: list[str]) -> torch.Tensor:
        inputs = self.processor(images=images, text=questions, return_tensors="pt",
                                padding=True).to(self._device)
        m = self.model
        seen = m.vision_model(pixel_values=inputs["pixel_values"]).last_hidden_state
        asked = m.text_encoder(input_ids=inputs["input_ids"],
                               attention_mask=inputs["attention_mask"],
                               encoder_hidden_states=seen,
                               encoder_attention_mask=torch.ones(seen.shape[:-1], dtype=torch.long,
                                                                 device=seen.device))[0]
        start = torch.full((len(images), 1), m.decoder_start_token_id, device=seen.device)
        out = m.text_decoder(input_ids=start, encoder_hidden_states=asked,
                             encoder_attention_mask=inputs["attention_mask"])
        return out.logits[:, -1, :]

    def _chat_logits(self, image: Any, question: str) -> torch.Tensor:
        chat = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": question}]}]
        prompt = self.processor.apply_chat_template(chat, add_generation_prompt=True) \
            if getattr(self.processor, "chat_template", None) else question
        inputs = self.processor(images=[image], text=prompt, return_tensors="pt").to(
            self._device)
        return self.model(**inputs).logits[:, -1, :]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """P(yes) per row, normalised as configured."""
        probs = torch.softmax(logits.float(), dim=-1)
        yes = probs[:, self.yes_ids].sum(-1)
        if self.normalize == "vocab":
            return yes
        return yes / (yes + probs[:, self.no_ids].sum(-1)).clamp_min(1e-12)

    @torch.inference_mode()
    def score_image_text(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        if not texts and not images:
            return []
        return self.probabilities(self.next_token_logits(images, texts)).cpu().tolist()
