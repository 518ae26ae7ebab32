"""Train the packaged shapes-world image models once, with a fixed seed.

    python -m tinmen.models.shapes.train [--out DIR] [--what clip|diffusion|all] [--seed 0]

writes two ordinary Hugging Face folders under ``--out`` (default: the ``packaged`` folder of
``tinmen.models``, where the registry's ``shapes-clip`` / ``shapes-diffusion`` specs look):

* ``shapes-clip``: a tiny ``CLIPModel`` with a word-level tokenizer over the shapes
  vocabulary and a 64 px ``CLIPImageProcessor``, trained contrastively on drawn scenes and
  their canonical captions. ``AutoModel`` / ``AutoTokenizer`` / ``AutoImageProcessor`` load it.
* ``shapes-diffusion``: a tiny ``StableDiffusionPipeline`` (32 px images, 16x16x4 latents)
  whose text encoder is the CLIP's text tower; the VAE is trained as an autoencoder on
  drawn scenes, then the UNet with the epsilon-prediction loss and 10 % caption dropout (so
  classifier-free guidance works). ``DiffusionPipeline.from_pretrained`` loads it.

Every stage reseeds torch and numpy from ``--seed``, so a stage rerun alone gives the same
weights (on the same torch build and thread count). At the end each stage prints what it
measured: the CLIP's zero-shot colour / shape accuracy on freshly drawn single-object
images (best of the 40 "a {color} {shape}" captions), and the colour / shape of generated
images as judged by that CLIP and by their dominant colour.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tinmen.models.shapes import data
from tinmen.models.shapes.world import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    RGB,
    SHAPES,
    SIZE_WORDS,
    STOPWORDS,
)
from tqdm import tqdm

PACKAGED = Path(__file__).resolve().parent.parent / "packaged"
CLIP_DIR, DIFFUSION_DIR = "shapes-clip", "shapes-diffusion"
CLIP_SIZE, DIFFUSION_SIZE = 64, 32
MAX_TOKENS = 32
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0..3; eos != 2 (CLIP's legacy pooling)
DEFAULT_STEPS = {"clip": 1200, "vae": 600, "unet": 1500}


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1] (= the processors' mean/std 0.5)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# --- tokenizer and image processor ---------------------------------------------------------

def vocabulary() -> list[str]:
    words = set(COLORS) | set(SHAPES) | set(BACKGROUNDS) | set(RGB) | set(SIZE_WORDS)
    words |= set(POSITIONS) | {"centre", "middle", "grey", "background", "an", "top",
                               "bottom", "next", "above", "below", "beside", "inside", "two"}
    words |= set(STOPWORDS) | {",", ".", ";", ":", "!", "?", "-"}
    return list(SPECIALS) + sorted(words)


def build_tokenizer() -> Any:
    """A word-level fast tokenizer over the shapes vocabulary, built without any download."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=MAX_TOKENS,
        model_input_names=["input_ids", "attention_mask"])


def build_image_processor() -> Any:
    Processor: type[Any]
    try:  # transformers >= 5 without torchvision: the PIL processor, by its own name
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import CLIPImageProcessor as Processor
    return Processor(do_resize=True, size={"shortest_edge": CLIP_SIZE}, resample=3,
                     do_center_crop=True, crop_size={"height": CLIP_SIZE, "width": CLIP_SIZE},
                     do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                     image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True)


def tokenize(tokenizer: Any, texts: list[str], max_length: bool = False) -> dict[str, Any]:
    return tokenizer(texts, padding="max_length" if max_length else True, truncation=True,
                     max_length=MAX_TOKENS, return_tensors="pt")


# --- CLIP ------------------------------------------------------------------------------------

def build_clip(tokenizer: Any) -> Any:
    from transformers import CLIPConfig, CLIPModel

    text = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, projection_dim=64)
    vision = dict(hidden_size=96, intermediate_size=192, num_hidden_layers=3,
                  num_attention_heads=4, image_size=CLIP_SIZE, patch_size=8, num_channels=3,
                  projection_dim=64)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=64)
    return CLIPModel(config)


def clip_batch(rng: np.random.Generator, batch: int) -> tuple[list[str], torch.Tensor,
                                                              torch.Tensor]:
    """Captions, pixels and the soft targets (caption j true of image i)."""
    scenes = [data.sample_scene(rng) for _ in range(batch)]
    described = [data.describe(s, rng) for s in scenes]
    truth = torch.tensor([[d.holds_for(s) for d in described] for s in scenes],
                         dtype=torch.float32)
    pixels = to_pixels(data.images_array(scenes, CLIP_SIZE))
    return [data.caption_text(d) for d in described], pixels, truth


def soft_clip_loss(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every true (image, caption) pair counts as a positive."""
    img = -(F.log_softmax(logits, dim=1) * truth / truth.sum(1, keepdim=True)).sum(1).mean()
    txt = -(F.log_softmax(logits.T, dim=1) * truth.T / truth.T.sum(1, keepdim=True)).sum(1)
    return (img + txt.mean()) / 2


def lr_at(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_clip(out: Path, steps: int, seed: int, batch: int = 128,
               progress: bool = True) -> dict[str, Any]:
    rng = seed_everything(seed)
    tokenizer, processor = build_tokenizer(), build_image_processor()
    model = build_clip(tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model.train()
    bar = tqdm(range(steps), desc="clip", disable=not progress)
    for step in bar:
        texts, pixels, truth = clip_batch(rng, batch)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, 1e-3)
        tokens = tokenize(tokenizer, texts)
        outputs = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                        pixel_values=pixels)
        loss = soft_clip_loss(outputs.logits_per_image, truth)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    return evaluate_clip(out, seed=seed + 1000)


class ShapesClip:
    """The trained CLIP loaded from its folder, with zero-shot helpers used by the checks."""

    def __init__(self, folder: Path | str) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(folder, local_files_only=True,
                                               use_safetensors=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)

    @torch.inference_mode()
    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        tokens = tokenize(self.tokenizer, texts)
        out = self.model.get_text_features(**tokens)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(out, dim=-1)

    @torch.inference_mode()
    def image_embeds(self, images: list[Any]) -> torch.Tensor:
        pixels = self.processor([im.convert("RGB") for im in images],
                                return_tensors="pt")["pixel_values"]
        out = self.model.get_image_features(pixel_values=pixels)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(out, dim=-1)

    def classify(self, images: list[Any]) -> list[tuple[str, str]]:
        """(colour, shape) of each image: the best of the 40 "a {color} {shape}" captions."""
        sims = self.image_embeds(images) @ self.text_embeds(data.short_captions()).T
        return [(COLORS[i // len(SHAPES)], SHAPES[i % len(SHAPES)])
                for i in sims.argmax(1).tolist()]


def accuracy(predicted: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> dict[str, float]:
    n = max(1, len(wanted))
    return {"color": sum(p[0] == w[0] for p, w in zip(predicted, wanted)) / n,
            "shape": sum(p[1] == w[1] for p, w in zip(predicted, wanted)) / n,
            "joint": sum(p == w for p, w in zip(predicted, wanted)) / n}


def evaluate_clip(folder: Path, seed: int, per_class: int = 5) -> dict[str, Any]:
    """Zero-shot accuracy on fresh single-object drawings + matched-vs-altered caption test."""
    from tinmen.models.shapes.world import draw_scene

    rng = np.random.default_rng(seed)
    clip = ShapesClip(folder)
    wanted = [(c, s) for c in COLORS for s in SHAPES for _ in range(per_class)]
    scenes = [data.single_object_scene(c, s, rng) for c, s in wanted]
    images = [draw_scene(s, CLIP_SIZE) for s in scenes]
    result: dict[str, Any] = {"zero_shot": accuracy(clip.classify(images), wanted),
                              "n_images": len(images)}
    # matched full caption vs the same caption with the colour or the shape changed
    altered = []
    for scene in scenes:
        obj = scene.objects[0]
        if rng.random() < 0.5:
            colors = [c for c in COLORS if c not in (obj.color, scene.background)]
            other = obj.model_copy(update={"color": colors[rng.integers(len(colors))]})
        else:
            shapes = [s for s in SHAPES if s != obj.name]
            other = obj.model_copy(update={"name": shapes[rng.integers(len(shapes))]})
        altered.append(data.caption(scene.model_copy(update={"objects": (other,)})))
    image_e = clip.image_embeds(images)
    good = (image_e * clip.text_embeds([data.caption(s) for s in scenes])).sum(-1)
    bad = (image_e * clip.text_embeds(altered)).sum(-1)
    wins = int((good > bad).sum())
    result["matched_beats_altered"] = wins / len(scenes)
    return result


# --- diffusion -------------------------------------------------------------------------------

def build_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                         sample_size=DIFFUSION_SIZE, mid_block_add_attention=False)


def build_unet(cross_dim: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=DIFFUSION_SIZE // 2, in_channels=4, out_channels=4,
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=16,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_dim, attention_head_dim=4)


def noise_schedulers() -> tuple[Any, Any]:
    from diffusers import DDIMScheduler, DDPMScheduler

    common = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                  prediction_type="epsilon", clip_sample=False)
    return DDPMScheduler(**common), DDIMScheduler(**common, set_alpha_to_one=False,
                                                  steps_offset=1)


def scene_pool(rng: np.random.Generator, n: int) -> list[Any]:
    return [data.sample_scene(rng, p_single=0.75) for _ in range(n)]


def train_vae(steps: int, seed: int, batch: int = 32, progress: bool = True) -> Any:
    rng = seed_everything(seed)
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    vae.train()
    bar = tqdm(range(steps), desc="vae", disable=not progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, 2e-3, warmup=50)
        x = to_pixels(data.images_array(scene_pool(rng, batch), DIFFUSION_SIZE))
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        # shapes are a few percent of the pixels: weight them up so colours survive
        foreground = ((x - x[:, :, :1, :1]).abs().amax(1, keepdim=True) > 0.1).float()
        weight = 1.0 + 9.0 * foreground
        error = (recon - x).abs() + (recon - x) ** 2
        loss = (weight * error).mean() / weight.mean() + 1e-6 * posterior.kl().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    return vae.eval()


@torch.no_grad()
def encode_pool(vae: Any, images: np.ndarray, chunk: int = 256) -> torch.Tensor:
    return torch.cat([vae.encode(to_pixels(images[i:i + chunk])).latent_dist.mean
                      for i in range(0, len(images), chunk)])


def encode_prompts(text_encoder: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Prompt states exactly as StableDiffusionPipeline makes them (max_length, no mask)."""
    ids = tokenize(tokenizer, texts, max_length=True)["input_ids"]
    return text_encoder(ids).last_hidden_state


def train_diffusion(out: Path, clip_folder: Path, vae_steps: int, unet_steps: int, seed: int,
                    batch: int = 32, pool: int = 6000, progress: bool = True,
                    evaluate: bool = True) -> dict[str, Any]:
    from diffusers import StableDiffusionPipeline
    from transformers import AutoModel, AutoTokenizer, CLIPTextModel

    tokenizer = AutoTokenizer.from_pretrained(clip_folder, local_files_only=True)
    clip = AutoModel.from_pretrained(clip_folder, local_files_only=True, use_safetensors=True)
    text_encoder = CLIPTextModel(clip.config.text_config)
    text_encoder.load_state_dict(clip.text_model.state_dict())
    text_encoder.eval().requires_grad_(False)
    del clip

    vae = train_vae(vae_steps, seed + 1, progress=progress).requires_grad_(False)
    rng = seed_everything(seed + 2)
    scenes = scene_pool(rng, min(pool, max(256, unet_steps * batch)))
    images = data.images_array(scenes, DIFFUSION_SIZE)
    latents = encode_pool(vae, images)
    scale = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scale)
    latents = latents * scale
    with torch.no_grad():
        x = to_pixels(images[:256])
        vae_mse = float(F.mse_loss(vae.decode(latents[:256] / scale).sample, x))

    train_sched, infer_sched = noise_schedulers()
    unet = build_unet(text_encoder.config.hidden_size)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=0.01)
    unet.train()
    with torch.no_grad():
        empty = encode_prompts(text_encoder, tokenizer, [""])
    bar = tqdm(range(unet_steps), desc="unet", disable=not progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, unet_steps, 1e-3, warmup=100)
        idx = rng.integers(len(scenes), size=batch)
        texts = [data.caption(scenes[i], rng) for i in idx]
        drop = torch.from_numpy(rng.random(batch) < 0.1)
        with torch.no_grad():
            cond = encode_prompts(text_encoder, tokenizer, texts)
            cond = torch.where(drop[:, None, None], empty.expand_as(cond), cond)
        x0 = latents[torch.from_numpy(idx)]
        noise = torch.randn_like(x0)
        t = torch.randint(0, train_sched.config.num_train_timesteps, (batch,))
        noisy = train_sched.add_noise(x0, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    unet.eval()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=infer_sched, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    out.mkdir(parents=True, exist_ok=True)
    # diffusers' lazy-import stubs hide DiffusionPipeline.save_pretrained from mypy
    pipe.save_pretrained(out)  # type: ignore[attr-defined]
    result: dict[str, Any] = {"vae_reconstruction_mse": vae_mse, "latent_scale": scale}
    if evaluate:
        result.update(evaluate_diffusion(out, clip_folder))
    return result


def dominant_color(image: Any) -> str | None:
    """The shapes colour most of the non-background pixels are nearest to (None if none)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3)
    corners = np.asarray(image.convert("RGB"), dtype=np.float32)[[0, 0, -1, -1], [0, -1, 0, -1]]
    background = np.median(corners, axis=0)
    fg = pixels[np.linalg.norm(pixels - background, axis=1) > 60]
    if len(fg) == 0:
        return None
    palette = np.array([RGB[c] for c in COLORS], dtype=np.float32)
    nearest = np.linalg.norm(fg[:, None] - palette[None], axis=2).argmin(1)
    return COLORS[int(np.bincount(nearest, minlength=len(COLORS)).argmax())]


def generate(pipe: Any, prompts: list[str], seeds: list[int], steps: int = 20,
             guidance_scale: float = 7.5, chunk: int = 40) -> list[Any]:
    images = []
    for i in range(0, len(prompts), chunk):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i:i + chunk]]
        images += pipe(prompt=prompts[i:i + chunk], generator=gens, output_type="pil",
                       num_inference_steps=steps, guidance_scale=guidance_scale).images
    return images


@torch.inference_mode()
def evaluate_diffusion(folder: Path, clip_folder: Path, seeds_per_prompt: int = 2,
                       guidance_scales: tuple[float, ...] = (7.5, 3.0)) -> dict[str, Any]:
    """Generate the 40 "a {color} {shape}" prompts and judge them with the CLIP and pixels."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    clip = ShapesClip(clip_folder)
    wanted = [(c, s) for c in COLORS for s in SHAPES for _ in range(seeds_per_prompt)]
    prompts = [f"a {c} {s}" for c, s in wanted]
    seeds = list(range(len(prompts)))
    result: dict[str, Any] = {"n_generated": len(prompts),
                              "chance": {"color": 1 / len(COLORS), "shape": 1 / len(SHAPES),
                                         "joint": 1 / (len(COLORS) * len(SHAPES))}}
    for scale in guidance_scales:
        images = generate(pipe, prompts, seeds, guidance_scale=scale)
        judged = accuracy(clip.classify(images), wanted)
        judged["dominant_color"] = sum(dominant_color(im) == c for im, (c, _) in
                                       zip(images, wanted)) / len(wanted)
        result[f"generated_cfg{scale:g}"] = judged
    return result


# --- command line ----------------------------------------------------------------------------

def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(out: Path, what: str, seed: int, clip_steps: int, vae_steps: int, unet_steps: int,
        progress: bool = True, evaluate: bool = True) -> dict[str, Any]:
    report: dict[str, Any] = {"seed": seed}
    start = time.perf_counter()
    if what in ("clip", "all"):
        t0 = time.perf_counter()
        report["clip"] = train_clip(out / CLIP_DIR, clip_steps, seed, progress=progress)
        report["clip"].update(steps=clip_steps, seconds=round(time.perf_counter() - t0, 1),
                              megabytes=round(folder_mb(out / CLIP_DIR), 2))
    if what in ("diffusion", "all"):
        if not (out / CLIP_DIR / "config.json").exists():
            raise SystemExit(f"{out / CLIP_DIR} has no trained CLIP; run --what clip first")
        t0 = time.perf_counter()
        report["diffusion"] = train_diffusion(out / DIFFUSION_DIR, out / CLIP_DIR, vae_steps,
                                              unet_steps, seed, progress=progress,
                                              evaluate=evaluate)
        report["diffusion"].update(vae_steps=vae_steps, unet_steps=unet_steps,
                                   seconds=round(time.perf_counter() - t0, 1),
                                   megabytes=round(folder_mb(out / DIFFUSION_DIR), 2))
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m tinmen.models.shapes.train",
        description="Train the tiny shapes-world CLIP scorer and text-to-image diffusion "
                    "pipeline (fixed seed) and save them as Hugging Face folders that the "
                    "'shapes-clip' and 'shapes-diffusion' model specs load.")
    parser.add_argument("--out", type=Path, default=PACKAGED,
                        help=f"folder receiving {CLIP_DIR}/ and {DIFFUSION_DIR}/ "
                             f"(default: {PACKAGED})")
    parser.add_argument("--what", choices=("clip", "diffusion", "all"), default="all",
                        help="which model(s) to train; 'diffusion' reuses OUT/shapes-clip "
                             "(text encoder, tokenizer, judge) (default: all)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps for every stage (overrides the per-stage "
                             "defaults; tiny values make a smoke test)")
    parser.add_argument("--clip-steps", type=int, default=DEFAULT_STEPS["clip"],
                        help=f"CLIP contrastive steps (default: {DEFAULT_STEPS['clip']})")
    parser.add_argument("--vae-steps", type=int, default=DEFAULT_STEPS["vae"],
                        help=f"VAE autoencoder steps (default: {DEFAULT_STEPS['vae']})")
    parser.add_argument("--unet-steps", type=int, default=DEFAULT_STEPS["unet"],
                        help=f"UNet denoising steps (default: {DEFAULT_STEPS['unet']})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1; results depend on it)")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip generating images to measure the diffusion pipeline")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {k: args.steps if args.steps is not None else getattr(args, f"{k}_steps")
             for k in ("clip", "vae", "unet")}
    report = run(args.out, args.what, args.seed, steps["clip"], steps["vae"], steps["unet"],
                 progress=not args.quiet, evaluate=not args.no_eval)
    print(json.dumps(report, indent=2))
    if "clip" in report:
        z = report["clip"]["zero_shot"]
        print(f"CLIP zero-shot on {report['clip']['n_images']} fresh single-object images: "
              f"colour {z['color']:.3f}, shape {z['shape']:.3f}, joint {z['joint']:.3f} "
              f"(chance {1 / len(COLORS):.3f} / {1 / len(SHAPES):.3f} / "
              f"{1 / (len(COLORS) * len(SHAPES)):.3f}); matched caption beats altered one "
              f"{report['clip']['matched_beats_altered']:.3f}")
    for key, value in report.get("diffusion", {}).items():
        if key.startswith("generated_"):
            print(f"diffusion {key}: CLIP-judged colour {value['color']:.3f}, shape "
                  f"{value['shape']:.3f}, joint {value['joint']:.3f}; dominant colour "
                  f"{value['dominant_color']:.3f} (chance 0.125 / 0.200 / 0.025)")
    return report


if __name__ == "__main__":
    main()
