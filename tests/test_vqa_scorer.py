"""The VQAScore backend on a tiny random BLIP VQA model built from configs, saved to tmp_path
and loaded through the real ``from_pretrained`` path (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from tinmen.models.backends.vqa_scorer import VQAScorer
from tinmen.models.protocols import Backend, ImageTextScorer
from tinmen.models.registry import backend_class
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "yes", "no", "does", "this",
         "figure", "show", "a", "red", "blue", "circle", "square", "please", "answer", "or",
         '"', "?", "."]


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> Path:
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    path = tmp_path_factory.mktemp("tiny-blip")
    (path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = BertTokenizer(str(path / "vocab.txt"), model_max_length=32)
    images = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=images, tokenizer=tok).save_pretrained(path)
    torch.manual_seed(0)
    config = BlipConfig(
        text_config={"vocab_size": len(WORDS), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 32, "encoder_hidden_size": 32,
                     "bos_token_id": WORDS.index("[DEC]"), "pad_token_id": 0,
                     "sep_token_id": WORDS.index("[SEP]"), "eos_token_id": WORDS.index("[SEP]")},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16)
    BlipForQuestionAnswering(config).save_pretrained(path)
    return path


def spec(path: Path, **options) -> ModelSpec:
    return ModelSpec(name="tiny-blip", backend="vqa-scorer", source=str(path), device="cpu",
                     options=options)


def square(colour: str) -> Image.Image:
    return Image.new("RGB", (32, 32), {"red": (220, 40, 40), "blue": (40, 80, 220)}[colour])


def test_scores_are_probabilities_one_per_pair(tiny_blip):
    scorer = backend_class("vqa-scorer").from_spec(spec(tiny_blip))
    assert isinstance(scorer, ImageTextScorer) and isinstance(scorer, Backend)
    assert type(scorer.model).__name__ == "BlipForQuestionAnswering" and scorer.blip
    images, texts = [square("red"), square("blue"), square("red")], \
        ["a red circle", "a blue square", "a blue square"]
    scores = scorer.score_image_text(images, texts)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores == pytest.approx(scorer.score_image_text(images, texts), abs=1e-6)
    assert scores[1:2] == pytest.approx(scorer.score_image_text(images[1:2], texts[1:2]),
                                        abs=1e-5)  # batching does not change a pair's score
    assert len(set(round(s, 6) for s in scores)) > 1
    assert 10_000 < scorer.nbytes() < 5_000_000 and scorer.device() == "cpu"


def test_yes_no_normalisation_is_p_yes_over_p_yes_or_no(tiny_blip):
    scorer = VQAScorer.from_spec(spec(tiny_blip))
    vocab = VQAScorer.from_spec(spec(tiny_blip, normalize="vocab"))
    with torch.inference_mode():
        logits = scorer.next_token_logits([square("red")], ["a red circle"])
        probs = torch.softmax(logits, -1)[0]
    yes, no = probs[WORDS.index("yes")].item(), probs[WORDS.index("no")].item()
    assert scorer.score_image_text([square("red")], ["a red circle"])[0] == pytest.approx(
        yes / (yes + no), abs=1e-5)
    assert vocab.score_image_text([square("red")], ["a red circle"])[0] == pytest.approx(
        yes, abs=1e-5)


def test_bad_input_and_bad_options(tiny_blip, tmp_path):
    scorer = VQAScorer.from_spec(spec(tiny_blip))
    with pytest.raises(ValueError):
        scorer.score_image_text([square("red")], ["a", "b"])
    with pytest.raises(ConfigError, match="does not exist"):
        VQAScorer.from_spec(spec(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="normalize"):
        VQAScorer.from_spec(spec(tiny_blip, normalize="softly"))
    with pytest.raises(ConfigError, match="{text}"):
        VQAScorer.from_spec(spec(tiny_blip, question="Is it?"))


def test_score_follows_what_the_model_learned(tiny_blip):
    """A few steps teaching the tiny model "yes" for red pictures and "no" for blue ones move
    the score: the score reads the model, it is not a constant."""
    scorer = VQAScorer.from_spec(spec(tiny_blip))
    before = scorer.score_image_text([square("red"), square("blue")], ["a red circle"] * 2)
    yes, no = WORDS.index("yes"), WORDS.index("no")
    opt = torch.optim.Adam(scorer.model.parameters(), lr=3e-3)
    scorer.model.train()
    images, target = [square("red"), square("blue")] * 4, torch.tensor([yes, no] * 4)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(
            scorer.next_token_logits(images, ["a red circle"] * 8), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    scorer.model.eval()
    red, blue = scorer.score_image_text([square("red"), square("blue")], ["a red circle"] * 2)
    assert red > 0.75 and blue < 0.25 and (red - blue) > abs(before[0] - before[1])
