"""Image backends: the shapes world parser/painter, the weight-free renderer, a diffusers
pipeline and a CLIP scorer — the last two as tiny random models built from configs, saved to
tmp_path and loaded through the real ``from_pretrained`` path (no hub)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tinmen.models.backends.renderer import ShapesRenderer
from tinmen.models.protocols import Backend, ImageGenerator, ImageTextScorer
from tinmen.models.registry import backend_class, resolve_spec
from tinmen.models.shapes.world import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    RGB,
    SHAPES,
    SIZES,
    SceneObject,
    draw_scene,
    parse_scene_text,
    placed,
)
from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError

# --- shapes world ---------------------------------------------------------------------


def test_vocabulary_is_the_shared_one():
    assert COLORS == ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
    assert SHAPES == ("circle", "square", "triangle", "star", "diamond")
    assert (SIZES, POSITIONS, BACKGROUNDS) == (("small", "large"), ("left", "center", "right"),
                                               ("white", "gray", "black"))
    assert all(c in RGB for c in COLORS + BACKGROUNDS)


def test_parse_synonyms_generic_objects_and_background():
    scene = parse_scene_text("A big grey star in the middle; a tiny red dog and a cake. "
                             "Black background")
    assert scene.background == "black"
    assert scene.objects == (
        SceneObject(name="star", color="gray", size="large", position="center"),
        SceneObject(name="dog", color="red", size="small"), SceneObject(name="cake"))


def test_the_clause_adds_to_an_object_already_named():
    scene = parse_scene_text("a circle and a square on the right, the circle is blue")
    assert scene.objects == (SceneObject(name="circle", color="blue"),
                             SceneObject(name="square", position="right"))
    assert parse_scene_text("on a white background").objects == ()
    assert parse_scene_text("").background is None


def test_unplaced_objects_fill_free_slots_in_order():
    scene = parse_scene_text("a red circle, a blue square in the centre, a green star")
    assert [slot for _, slot in placed(scene)] == [0, 1, 2]


scenes = st.lists(st.tuples(st.sampled_from(COLORS), st.sampled_from(SIZES),
                            st.sampled_from(SHAPES)), min_size=1, max_size=3,
                  unique_by=lambda t: t[2])


@settings(max_examples=40, deadline=None)
@given(scenes, st.sampled_from(BACKGROUNDS), st.permutations(POSITIONS))
def test_canonical_text_parses_back_exactly(objects, background, positions):
    text = ", ".join(f"a {size} {color} {shape} on the {pos}" for (color, size, shape), pos
                     in zip(objects, positions)) + f", on a {background} background"
    scene = parse_scene_text(text)
    assert scene.background == background
    assert scene.objects == tuple(SceneObject(name=s, color=c, size=z, position=p)
                                  for (c, z, s), p in zip(objects, positions))


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=60))
def test_parser_and_painter_never_fail(text):
    image = draw_scene(parse_scene_text(text), size=64)
    assert image.size == (64, 64)


# --- shapes renderer --------------------------------------------------------------------


def test_renderer_puts_colours_where_the_prompt_says():
    renderer = ShapesRenderer(size=120)
    assert isinstance(renderer, ImageGenerator) and isinstance(renderer, Backend)
    image = renderer.generate_images(["a large red circle on the left, a large blue diamond "
                                      "on the right, on a gray background"], [0], {})[0]
    assert image.getpixel((20, 60)) == RGB["red"]
    assert image.getpixel((100, 60)) == RGB["blue"]
    assert image.getpixel((60, 5)) == RGB["gray"]
    assert renderer.nbytes() < 10_000 and renderer.device() == "cpu"


def test_unknown_colour_is_an_outline_and_objects_are_labelled(tmp_path):
    renderer = ShapesRenderer(size=120)
    known, unknown = renderer.generate_images(["a large green square", "a large square"],
                                              [0, 0], {})
    assert known.getpixel((20, 60)) == RGB["green"]
    assert unknown.getpixel((20, 60)) != RGB["green"]
    assert unknown.getpixel((20 - 120 // 8, 60)) == (0, 0, 0)  # the outline
    cake = np.asarray(renderer.generate_images(["a red cake"], [0], {})[0])
    below = cake[60 + 12 + 2:, :40]  # the label under the box
    assert (below.sum(-1) < 400).any()
    renderer.generate_images(["a large red circle on the left, a cat, a small blue star, "
                              "a triangle, on a gray background"], [0], {})[0].save(
        tmp_path / "demo.png")


def test_renderer_is_deterministic_and_sized_by_params():
    renderer = ShapesRenderer.from_spec(resolve_spec("shapes-renderer"))
    a, b = renderer.generate_images(["a small purple star"] * 2, [1, 2], {"size": 64})
    assert a.size == (64, 64) and a.tobytes() == b.tobytes()
    assert renderer.layout("a star, a cat on the left") == [("star", 1), ("cat", 0)]


# --- tiny CLIP tokenizer (byte-level alphabet, no merges) ----------------------------


def build_clip_tokenizer(path: Path, max_length: int = 16):
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in sorted(pre_tokenizers.ByteLevel.alphabet()):
            vocab[c + suffix] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)
    tok.save_pretrained(path)
    return tok


# --- diffusers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    path = tmp_path_factory.mktemp("tiny-sd")
    tok = build_clip_tokenizer(path / "tokenizer-build")
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
        pad_token_id=1))
    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
        attention_head_dim=2)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                            scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(path / "pipe")
    return path / "pipe"


def sd_spec(path: Path, **options) -> ModelSpec:
    return ModelSpec(name="tiny-sd", backend="diffusers-t2i", source=str(path), device="cpu",
                     options={"num_inference_steps": 2, "height": 32, "width": 32, **options})


def test_diffusers_pipeline_loads_and_is_seeded(tiny_sd):
    backend = backend_class("diffusers-t2i").from_spec(sd_spec(tiny_sd))
    assert isinstance(backend, ImageGenerator) and isinstance(backend, Backend)
    assert type(backend.pipe).__name__ == "StableDiffusionPipeline"
    assert 100_000 < backend.nbytes() < 10_000_000 and backend.device() == "cpu"
    a, b = backend.generate_images(["a red circle", "a blue square"], [1, 2], {})
    assert isinstance(a, Image.Image) and a.size == (32, 32)
    again = backend.generate_images(["a blue square"], [2], {})[0]
    diff = np.abs(np.asarray(again, int) - np.asarray(b, int))
    assert diff.max() <= 2  # same seed, same picture whatever the batch
    assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() > 10
    other_seed = backend.generate_images(["a blue square"], [3], {})[0]
    assert np.abs(np.asarray(other_seed, int) - np.asarray(b, int)).max() > 10


def test_diffusers_options_are_merged_and_filtered(tiny_sd):
    backend = backend_class("diffusers-t2i").from_spec(sd_spec(tiny_sd, guidance_scale=1.0))
    kwargs = backend.call_kwargs({"height": 16, "width": 16, "not_an_option": 1})
    assert kwargs == {"num_inference_steps": 2, "guidance_scale": 1.0, "height": 16,
                      "width": 16}
    assert backend.generate_images(["x"], [0], {"height": 16, "width": 16})[0].size == (16, 16)
    backend.close()
    assert backend.pipe is None


def test_diffusers_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        backend_class("diffusers-t2i").from_spec(sd_spec(tmp_path / "nowhere"))


# --- CLIP scorer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tmp_path_factory.mktemp("tiny-clip")
    tok = build_clip_tokenizer(path, max_length=16)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(path)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=8)
    CLIPModel(config).save_pretrained(path)
    return path


def test_clip_scorer_returns_clipscore_per_pair(tiny_clip):
    spec = ModelSpec(name="tiny-clip", backend="clip-scorer", source=str(tiny_clip),
                     device="cpu")
    scorer = backend_class("clip-scorer").from_spec(spec)
    assert isinstance(scorer, ImageTextScorer) and isinstance(scorer, Backend)
    renderer = ShapesRenderer(size=64)
    images = renderer.generate_images(["a red circle", "a blue square", "a cat"], [0] * 3, {})
    long_text = "a large red circle on the left, " * 20  # longer than the text context
    texts = ["a red circle", "a blue square", long_text]
    cosines = scorer.cosines(images, texts)
    scores = scorer.score_image_text(images, texts)
    assert scores == pytest.approx([2.5 * max(c, 0.0) for c in cosines])
    assert all(-1.0 <= c <= 1.0 for c in cosines) and len(set(cosines)) == 3
    assert scorer.score_image_text(images[:1], texts[:1]) == pytest.approx(scores[:1], abs=1e-5)
    assert 10_000 < scorer.nbytes() < 5_000_000
    with pytest.raises(ValueError):
        scorer.score_image_text(images, texts[:1])


def test_clip_scorer_rejects_a_folder_without_clip(tmp_path):
    with pytest.raises(ConfigError):
        backend_class("clip-scorer").from_spec(ModelSpec(
            name="x", backend="clip-scorer", source=str(tmp_path), device="cpu"))


def test_registry_knows_the_image_backends():
    assert resolve_spec("shapes-renderer").backend == "shapes-renderer"
    for name in ("shapes-renderer", "diffusers-t2i", "clip-scorer", "vqa-scorer"):
        assert isinstance(backend_class(name), type)
    assert json.dumps(resolve_spec("shapes-renderer").identity)
