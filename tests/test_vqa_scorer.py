"""The VQAScore backend on tiny random models built from configs — a BLIP VQA model and a
LLaVA-style image-text-to-text chat model — saved to tmp_path and loaded through the real
``from_pretrained`` path (no hub)."""

from __future__ import annotations

import json
import shutil
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
CHAT_WORDS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "yes", "no", "Yes", "No", "does",
              "this", "figure", "show", "a", "red", "blue", "circle", "square", "please",
              "answer", "or", '"', "?", ".", "user", "assistant", ":"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {% for c in m['content'] %}"
                 "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}"
                 "{% endfor %}{% endfor %}{% if add_generation_prompt %}assistant : {% endif %}")


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


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    """LLaVA: a 1-layer Llama over a word-level tokenizer with an <image> token, a 1-layer
    CLIP vision tower on 32 px images (16 patches -> 16 image tokens), a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    path = tmp_path_factory.mktemp("tiny-llava")
    vocab = {w: i for i, w in enumerate(CHAT_WORDS)}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>",
                                  bos_token="<s>", eos_token="</s>",
                                  additional_special_tokens=["<image>"])
    LlavaProcessor(image_processor=CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tokenizer=tok,
        patch_size=8, vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
        image_token="<image>", num_additional_image_tokens=1).save_pretrained(path)
    torch.manual_seed(0)
    config = LlavaConfig(
        text_config={"model_type": "llama", "vocab_size": len(CHAT_WORDS), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "max_position_embeddings": 128,
                     "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3},
        vision_config={"model_type": "clip_vision_model", "hidden_size": 32,
                       "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
                       "projection_dim": 32},
        image_token_index=vocab["<image>"], vision_feature_layer=-1,
        vision_feature_select_strategy="default")
    LlavaForConditionalGeneration(config).save_pretrained(path)
    return path


def spec(path: Path, name: str = "tiny-blip", **options) -> ModelSpec:
    return ModelSpec(name=name, backend="vqa-scorer", source=str(path), device="cpu",
                     options=options)


def square(colour: str) -> Image.Image:
    return Image.new("RGB", (32, 32), {"red": (220, 40, 40), "blue": (40, 80, 220)}[colour])


PAIRS = ([square("red"), square("blue"), square("red")],
         ["a red circle", "a blue square", "does this show a blue square or a red circle"])


def check_scores(scorer: VQAScorer) -> list[float]:
    """One probability per pair, deterministic, independent of batching and batch size."""
    images, texts = PAIRS
    scores = scorer.score_image_text(images, texts)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores == pytest.approx(scorer.score_image_text(images, texts), abs=1e-6)
    for i in range(3):  # padding (right for BLIP, left for chat models) changes nothing
        assert scores[i:i + 1] == pytest.approx(
            scorer.score_image_text(images[i:i + 1], texts[i:i + 1]), abs=1e-5)
    scorer.batch_size = 2  # 2 + 1: the chunks add up to the same list
    assert scorer.score_image_text(images, texts) == pytest.approx(scores, abs=1e-5)
    scorer.batch_size = 16
    assert len(set(round(s, 6) for s in scores)) > 1
    assert scorer.score_image_text([], []) == []
    with pytest.raises(ValueError):
        scorer.score_image_text(images[:1], texts[:2])
    return scores


def check_yes_no(scorer: VQAScorer, path: Path, name: str) -> None:
    """yes_no: score = P(yes) / (P(yes) + P(no)), so score + P(no)/(P(yes)+P(no)) = 1;
    vocab: score = P(yes) over the whole vocabulary."""
    images, texts = PAIRS
    vocab = VQAScorer.from_spec(spec(path, name, normalize="vocab"))
    both = scorer.answer_probabilities(images, texts)
    for (yes, no), s, v in zip(both, scorer.score_image_text(images, texts),
                               vocab.score_image_text(images, texts)):
        assert 0.0 < yes + no <= 1.0
        assert s == pytest.approx(yes / (yes + no), abs=1e-5)
        assert s + no / (yes + no) == pytest.approx(1.0, abs=1e-6)
        assert v == pytest.approx(yes, abs=1e-6)


def train_red_yes_blue_no(scorer: VQAScorer, yes: int, no: int, steps: int = 60) -> None:
    opt = torch.optim.Adam(scorer.model.parameters(), lr=3e-3)
    images, target = [square("red"), square("blue")] * 4, torch.tensor([yes, no] * 4)
    scorer.model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(
            scorer.next_token_logits(images, ["a red circle"] * 8), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    scorer.model.eval()


# --- BLIP VQA -------------------------------------------------------------------------


def test_blip_scores_are_probabilities_one_per_pair(tiny_blip):
    scorer = backend_class("vqa-scorer").from_spec(spec(tiny_blip))
    assert isinstance(scorer, ImageTextScorer) and isinstance(scorer, Backend)
    assert type(scorer.model).__name__ == "BlipForQuestionAnswering" and scorer.blip
    assert scorer.yes_ids == [WORDS.index("yes")] and scorer.no_ids == [WORDS.index("no")]
    check_scores(scorer)
    assert 10_000 < scorer.nbytes() < 5_000_000 and scorer.device() == "cpu"


def test_blip_yes_no_normalisation(tiny_blip):
    check_yes_no(VQAScorer.from_spec(spec(tiny_blip)), tiny_blip, "tiny-blip")


def test_question_template_is_an_option(tiny_blip):
    default = VQAScorer.from_spec(spec(tiny_blip))
    other = VQAScorer.from_spec(spec(tiny_blip, question="{text} ?"))
    images, texts = PAIRS
    assert other.question == "{text} ?"
    assert other.score_image_text(images, texts) != pytest.approx(
        default.score_image_text(images, texts), abs=1e-6)


def test_bad_sources_and_options_are_config_errors(tiny_blip, tmp_path):
    with pytest.raises(ConfigError, match="'missing-vqa'.*does not exist"):
        VQAScorer.from_spec(spec(tmp_path / "nowhere", "missing-vqa"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="'empty-vqa'") as err:
        VQAScorer.from_spec(spec(tmp_path / "empty", "empty-vqa"))
    assert "\n" not in str(err.value)
    captioner = tmp_path / "captioner"
    shutil.copytree(tiny_blip, captioner)
    config = json.loads((captioner / "config.json").read_text())
    config["architectures"] = ["BlipForConditionalGeneration"]
    (captioner / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="not a BlipForQuestionAnswering"):
        VQAScorer.from_spec(spec(captioner, "captioner"))
    with pytest.raises(ConfigError, match="normalize"):
        VQAScorer.from_spec(spec(tiny_blip, normalize="softly"))
    with pytest.raises(ConfigError, match="{text}"):
        VQAScorer.from_spec(spec(tiny_blip, question="Is it?"))


def test_blip_score_follows_what_the_model_learned(tiny_blip):
    """A few steps teaching the tiny model "yes" for red pictures and "no" for blue ones move
    the score: the score reads the model, it is not a constant."""
    scorer = VQAScorer.from_spec(spec(tiny_blip))
    before = scorer.score_image_text([square("red"), square("blue")], ["a red circle"] * 2)
    train_red_yes_blue_no(scorer, WORDS.index("yes"), WORDS.index("no"))
    red, blue = scorer.score_image_text([square("red"), square("blue")], ["a red circle"] * 2)
    assert red > 0.75 and blue < 0.25 and (red - blue) > abs(before[0] - before[1])


# --- generic image-text-to-text chat model (LLaVA) -------------------------------------


def test_chat_model_scores_are_probabilities_one_per_pair(tiny_llava):
    scorer = backend_class("vqa-scorer").from_spec(spec(tiny_llava, "tiny-llava"))
    assert type(scorer.model).__name__ == "LlavaForConditionalGeneration" and not scorer.blip
    assert scorer.yes_ids == sorted(CHAT_WORDS.index(w) for w in ("yes", "Yes"))
    assert scorer.no_ids == sorted(CHAT_WORDS.index(w) for w in ("no", "No"))
    assert scorer.prompt("does this show a red circle ?") == (
        "user : <image> does this show a red circle ? assistant : ")
    check_scores(scorer)
    check_yes_no(scorer, tiny_llava, "tiny-llava")


def test_chat_model_score_follows_what_the_model_learned(tiny_llava):
    scorer = VQAScorer.from_spec(spec(tiny_llava, "tiny-llava"))
    train_red_yes_blue_no(scorer, CHAT_WORDS.index("Yes"), CHAT_WORDS.index("no"))
    red, blue = scorer.score_image_text([square("red"), square("blue")], ["a red circle"] * 2)
    assert red > 0.75 and blue < 0.25
