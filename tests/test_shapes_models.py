"""The packaged shapes-world models (``shapes-clip``, ``shapes-diffusion``), loaded through
tinmen's real path (registry spec -> backend ``from_spec`` -> ``from_pretrained``), plus a
smoke run of the training command into ``tmp_path``.

Thresholds sit well below what ``python -m tinmen.models.shapes.train`` measured for the
shipped weights and well above chance (colour 1/8, shape 1/5, both 1/40)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tinmen.models.backends.clip_scorer import ClipScorer
from tinmen.models.backends.diffusers_t2i import DiffusersT2I
from tinmen.models.registry import resolve_spec
from tinmen.models.shapes import data
from tinmen.models.shapes.train import main as train_main
from tinmen.models.shapes.world import COLORS, SHAPES, draw_scene
from tinmen.models.spec import ModelSpec


@pytest.fixture(scope="module")
def clip() -> ClipScorer:
    torch.set_num_threads(1)
    return ClipScorer.from_spec(resolve_spec("shapes-clip"))


@pytest.fixture(scope="module")
def t2i() -> DiffusersT2I:
    torch.set_num_threads(1)
    return DiffusersT2I.from_spec(resolve_spec("shapes-diffusion"))


@torch.inference_mode()
def classify(scorer: ClipScorer, images: list[Image.Image]) -> list[tuple[str, str]]:
    """Zero-shot (colour, shape): the best of the 40 "a {color} {shape}" captions, computed
    with the scorer's own tokenizer, image processor and model."""
    texts = data.short_captions()
    tokens = scorer.tokenizer(texts, padding=True, return_tensors="pt")
    pixels = scorer.image_processor([im.convert("RGB") for im in images],
                                    return_tensors="pt")["pixel_values"]
    text = scorer.model.get_text_features(**tokens)
    image = scorer.model.get_image_features(pixel_values=pixels)
    text = getattr(text, "pooler_output", text)
    image = getattr(image, "pooler_output", image)
    best = (torch.nn.functional.normalize(image, dim=-1)
            @ torch.nn.functional.normalize(text, dim=-1).T).argmax(1).tolist()
    return [(COLORS[i // len(SHAPES)], SHAPES[i % len(SHAPES)]) for i in best]


def test_clip_recognises_colour_and_shape_of_fresh_drawings(clip):
    rng = np.random.default_rng(12345)
    wanted = [(c, s) for c in COLORS for s in SHAPES]
    images = [draw_scene(data.single_object_scene(c, s, rng), 64) for c, s in wanted]
    got = classify(clip, images)
    colour = np.mean([g[0] == w[0] for g, w in zip(got, wanted)])
    shape = np.mean([g[1] == w[1] for g, w in zip(got, wanted)])
    joint = np.mean([g == w for g, w in zip(got, wanted)])
    assert colour >= 0.9 and shape >= 0.8 and joint >= 0.75, (colour, shape, joint)


def test_clipscore_prefers_the_matching_caption(clip):
    rng = np.random.default_rng(7)
    images, good, bad = [], [], []
    for i in range(30):
        scene = data.sample_scene(rng)
        obj = scene.objects[0]
        if i % 2:
            other = obj.model_copy(update={"color": next(
                c for c in rng.permutation(COLORS) if c not in (obj.color, scene.background))})
        else:
            other = obj.model_copy(update={"name": next(
                s for s in rng.permutation(SHAPES) if s != obj.name)})
        images.append(draw_scene(scene, 64))
        good.append(data.caption(scene))
        bad.append(data.caption(scene.model_copy(update={"objects": (other,)
                                                         + scene.objects[1:]})))
    matched = clip.score_image_text(images, good)
    altered = clip.score_image_text(images, bad)
    assert all(0.0 <= s <= 2.5 for s in matched + altered)
    assert np.mean([m > a for m, a in zip(matched, altered)]) >= 0.8


def test_diffusion_returns_seeded_images_of_the_configured_size(t2i):
    assert type(t2i.pipe).__name__ == "StableDiffusionPipeline"
    assert t2i.nbytes() < 10_000_000
    params = {"num_inference_steps": 8}
    a, b = t2i.generate_images(["a red circle", "a blue square"], [1, 2], params)
    assert isinstance(a, Image.Image) and a.size == (32, 32)
    again = t2i.generate_images(["a blue square"], [2], params)[0]
    assert np.abs(np.asarray(again, int) - np.asarray(b, int)).max() <= 2
    other_seed = t2i.generate_images(["a blue square"], [3], params)[0]
    assert np.abs(np.asarray(other_seed, int) - np.asarray(b, int)).max() > 10
    big = t2i.generate_images(["a green star"], [0], {**params, "size": 64})[0]
    assert big.size == (64, 64)


def test_generated_images_have_the_prompted_colour(clip, t2i):
    wanted = [(c, s) for c in COLORS for s in ("circle", "square")]
    images = t2i.generate_images([f"a {c} {s}" for c, s in wanted], list(range(len(wanted))),
                                 {"num_inference_steps": 20})
    got = classify(clip, images)
    colour = np.mean([g[0] == w[0] for g, w in zip(got, wanted)])
    assert colour >= 0.4, colour  # chance is 1/8


def test_training_command_smoke(tmp_path, capsys):
    from diffusers import DiffusionPipeline
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    report = train_main(["--out", str(tmp_path), "--steps", "2", "--quiet", "--no-eval"])
    assert "CLIP zero-shot" in capsys.readouterr().out
    assert set(report) >= {"clip", "diffusion", "seconds"}
    folder = tmp_path / "shapes-clip"
    assert hasattr(AutoModel.from_pretrained(folder, local_files_only=True),
                   "get_image_features")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert tok.unk_token_id not in tok("a large red circle on the left, on a gray "
                                       "background")["input_ids"]
    AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "shapes-diffusion",
                                             local_files_only=True)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    spec = ModelSpec(name="smoke", backend="diffusers-t2i",
                     source=str(tmp_path / "shapes-diffusion"), device="cpu",
                     options={"num_inference_steps": 2})
    image = DiffusersT2I.from_spec(spec).generate_images(["a red circle"], [0], {})[0]
    assert image.size == (32, 32)
