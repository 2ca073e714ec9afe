"""`avgen convert`: a Self-Forcing-family checkpoint + a Wan2.1 base folder -> an avgen pipeline folder.

The folder is diffusers' layout, video only (no audio tower, no audio codec):
    model_index.json   the pipeline class and the recipe's sampling defaults (see AVStreamingPipeline)
    transformer/       CausalAVTransformer(modalities=["video"]) holding the generator's weights
    vae/ text_encoder/ tokenizer/   from the base (Wan2.1 VAE, umT5, its tokenizer)
    scheduler/         FlowMatchShortcutScheduler with the recipe's timesteps, shift and "renoise" sampler
so that `RollingForcingPipeline.from_pretrained(folder)` with no arguments samples as the
family's official inference script does.

Memory stays near one generator: the checkpoint is memory-mapped, the transformer is built
on the meta device and takes the (cast) tensors as its parameters, and the base's large text
encoder is linked or streamed tensor by tensor. Everything is written into a staging folder
beside the output and renamed at the end, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from avgen.convert.checkpoint import check_matches_base, load_generator, to_diffusers, wan_architecture
from avgen.convert.lora import load_lora, merge_lora
from avgen.convert.recipes import Recipe
from avgen.convert.wan_base import read_base_info, write_base_components

WAN_ROPE_FRAMES = 1024  # the official rotary table of Wan2.1, in latent frames
WAN_TEXT_LENGTH = 512  # umT5 tokens Wan pads every prompt to
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def convert_checkpoint(
    checkpoint: str | Path,
    base: str | Path,
    recipe: Recipe,
    out: str | Path,
    weights: str | None = None,
    lora: str | Path | None = None,
    lora_rank: int | None = None,
    lora_alpha: float | None = None,
    dtype: str = "bf16",
    num_heads: int | None = None,
    text_length: int = WAN_TEXT_LENGTH,
) -> Path:
    """Write the pipeline folder `out` (see the module docstring); return its path.

    Args:
        weights: the checkpoint's container ("generator_ema" or "generator"); default: the recipe's.
        lora, lora_rank, lora_alpha: a LoRA file merged into the generator (LongLive); rank and
            alpha default to the recipe's when the file does not store them.
        dtype: "bf16" or "fp32" for the transformer and text encoder (the VAE stays fp32).
        num_heads: attention heads, when the width is not a multiple of Wan's 128-channel heads.
        text_length: tokens prompts are padded to (Wan: 512).
    """
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{str(out)!r} exists and is not empty: choose a new output folder")
    base_info = read_base_info(base)
    state = load_generator(checkpoint, weights or recipe.weights)
    if lora is not None:
        rank = lora_rank if lora_rank is not None else recipe.lora_rank
        alpha = lora_alpha if lora_alpha is not None else recipe.lora_alpha
        state = merge_lora(state, load_lora(lora), rank=rank, alpha=alpha)
    arch = wan_architecture(state, num_heads)
    check_matches_base(arch, base_info.text_dim, base_info.z_dim)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.convert-", dir=out.parent))
    try:
        write_transformer(to_diffusers(state), arch, recipe, staging / "transformer", DTYPES[dtype])
        del state
        write_base_components(base, staging, DTYPES[dtype])
        write_scheduler(recipe, staging / "scheduler")
        write_model_index(recipe, staging, text_length)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def transformer_config(arch: dict, recipe: Recipe) -> dict:
    """CausalAVTransformer's config for a Wan generator (official `WanModel` arguments) sampled by `recipe`."""
    return dict(
        video_in_channels=arch["in_dim"],
        video_patch_size=tuple(arch["patch_size"]),
        video_dim=arch["dim"],
        video_num_heads=arch["num_heads"],
        video_ffn_dim=arch["ffn_dim"],
        num_layers=arch["num_layers"],
        fusion=False,
        text_dim=arch["text_dim"],
        freq_dim=arch["freq_dim"],
        eps=arch["eps"],
        cross_attn_norm=arch["cross_attn_norm"],
        chunk_frames=recipe.chunk_frames,
        rope_max_seq_len=WAN_ROPE_FRAMES,
        modalities=("video",),
        step_conditioning=False,
    )


def write_transformer(video_state: dict, arch: dict, recipe: Recipe, folder: Path, dtype: torch.dtype) -> None:
    """Save a video-only CausalAVTransformer holding `video_state` (diffusers names), cast to `dtype`."""
    from avgen.models.transformer import CausalAVTransformer

    if arch["out_dim"] != arch["in_dim"]:
        raise ValueError(f"the checkpoint reads {arch['in_dim']} latent channels but writes {arch['out_dim']}; avgen needs them equal")
    with torch.device("meta"):
        model = CausalAVTransformer(**transformer_config(arch, recipe))
    cast = {name: tensor.to(dtype) for name, tensor in video_state.items()}
    model.video.load_state_dict(cast, strict=True, assign=True)
    model.save_pretrained(folder, safe_serialization=True)


def write_scheduler(recipe: Recipe, folder: Path) -> None:
    from avgen.scheduler import FlowMatchShortcutScheduler

    scheduler = FlowMatchShortcutScheduler(**recipe.scheduler_config())
    scheduler.save_pretrained(folder)


def write_model_index(recipe: Recipe, folder: Path, text_length: int) -> None:
    """model_index.json: the components (no audio codec) and the recipe's sampling defaults."""
    import diffusers

    tokenizer_config = folder / "tokenizer" / "tokenizer_config.json"
    tokenizer_class = "AutoTokenizer"
    if tokenizer_config.is_file():
        tokenizer_class = json.loads(tokenizer_config.read_text()).get("tokenizer_class") or tokenizer_class
    index = {
        "_class_name": "RollingForcingPipeline",
        "_diffusers_version": diffusers.__version__,
        "transformer": ["avgen.models.transformer", "CausalAVTransformer"],
        "vae": ["avgen.codecs.video", "VideoCodec"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", tokenizer_class],
        "scheduler": ["avgen.scheduler", "FlowMatchShortcutScheduler"],
        "audio_codec": [None, None],
        "fps": 16,
        "height": 480,
        "width": 832,
        "num_frames": 1 + 4 * (recipe.num_latent_frames - 1),
        **recipe.sampling_defaults(),
        "text_length": text_length,
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
