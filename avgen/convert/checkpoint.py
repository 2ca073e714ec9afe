"""Self-Forcing-family generator checkpoints: open, read the architecture, rename for diffusers.

The field's streaming video checkpoints (Self-Forcing, Rolling Forcing, CausVid, LongLive,
Causal-Forcing) are Wan2.1-T2V fine-tunes that their training code saves as
`torch.save({"generator": sd, "generator_ema": sd, "critic": sd, ...})`. Each state dict
carries the official Wan names (`blocks.0.self_attn.q.weight`) under the training wrapper's
`model.` prefix, sometimes with the segments FSDP, activation checkpointing or torch.compile
insert (`model._fsdp_wrapped_module.blocks.0._fsdp_wrapped_module.self_attn.q.weight`).

Which weights each project's own inference script loads (inference.py / README, 2025-26):
  - Self-Forcing `self_forcing_dmd.pt`, Rolling Forcing `rolling_forcing_dmd.pt`, Causal-Forcing
    frame-wise and Causal-Forcing++: `generator_ema` (they run with `--use_ema`).
  - Causal-Forcing chunk-wise `chunkwise/causal_forcing.pt`: `generator` (no `--use_ema`).
  - CausVid `autoregressive_checkpoint/model.pt`: `generator` (saved with `critic` only).
  - LongLive `longlive_base.pt`: `generator` (`use_ema: false`); its `lora.pt` was trained on
    that container, see avgen/convert/lora.py.
So the default below (EMA when present) suits the first group; the others need `weights="generator"`.

Tensors stay memory-mapped from the file: loading copies nothing, and only the container
asked for is ever touched, so at most one generator is in memory at a time.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

logger = logging.getLogger(__name__)

# Containers in the order the default picks them; "model" and "state_dict" hold a single generator.
CONTAINERS = ("generator_ema", "generator", "model", "state_dict")
WEIGHTS = ("generator_ema", "generator")
# Inserted anywhere in a key by FSDP, activation checkpointing and torch.compile.
WRAPPER_SEGMENTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
# Leading prefixes of DDP (`module.`), the training wrapper (`model.`) and ComfyUI files
# (`diffusion_model.`); no official Wan key starts with one of them.
GENERATOR_PREFIXES = ("module.", "model.", "diffusion_model.")

# The official Wan2.1 text-to-video transformer: its top-level modules and keys every one has.
WAN_MODULES = ("patch_embedding", "text_embedding", "time_embedding", "time_projection", "blocks", "head")
WAN_REQUIRED_KEYS = (
    "patch_embedding.weight",
    "text_embedding.0.weight",
    "time_embedding.0.weight",
    "time_projection.1.weight",
    "blocks.0.self_attn.q.weight",
    "blocks.0.ffn.0.weight",
    "head.head.weight",
)
# Every released Wan (1.3B: 1536 / 12, 14B: 5120 / 40, 2.2-5B: 3072 / 24) uses 128-wide heads.
WAN_HEAD_DIM = 128
# Wan's norm epsilon; it is a constant of the architecture, not stored in the weights.
WAN_EPS = 1e-6


def open_weights(path: str | Path) -> Mapping:
    """The top-level object of a `.safetensors` file or a `torch.save` zip file, memory-mapped.

    PyTorch files are read with `weights_only=True`, never as arbitrary pickles.
    Raises ValueError (one line, naming the file) when `path` is not such a file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; pass the checkpoint file in it (e.g. model.pt)")
    if not path.is_file():
        raise ValueError(f"{path}: no such file; check the path")
    if path.suffix == ".safetensors":
        try:
            return safetensors.torch.load_file(path)
        except safetensors.SafetensorError as error:
            raise ValueError(f"{path}: not a readable safetensors file ({error}); check the path or download again") from None
    # torch.save has written zip archives since 1.6; anything else (random bytes, text, a
    # partial download, a legacy file) cannot be memory-mapped and is not what the field ships.
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (.pt/.pth written by torch.save) or a .safetensors file; "
            "check the path, or download it again if it is a partial download"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = f"pickled Python objects ({found[1]})" if found else "pickle data other than tensors"
        raise ValueError(
            f"{path}: holds {what}, which avgen does not unpickle (unsafe); "
            "if you trust the file, re-save its state dicts alone with torch.save or as safetensors"
        ) from None
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({reason}); check the path or download again") from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: holds a {type(checkpoint).__name__}, not a state dict; pass a generator checkpoint")
    return checkpoint


def strip_wrappers(state: Mapping, prefixes: tuple[str, ...] = GENERATOR_PREFIXES) -> dict[str, torch.Tensor]:
    """Tensors of `state` with wrapper segments removed anywhere and `prefixes` from the front.

    Entries that are not tensors (step counters and the like) are dropped. The tensors are
    the same objects, not copies.
    """
    stripped = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = key
        for segment in WRAPPER_SEGMENTS:
            name = name.replace(segment, "")
        while prefix := next((p for p in prefixes if name.startswith(p)), None):
            name = name[len(prefix) :]
        if name in stripped:
            raise ValueError(f"two keys become {name!r} without wrapper prefixes; the file mixes wrapped and plain copies")
        stripped[name] = value
    return stripped


def describe_keys(checkpoint: Mapping) -> str:
    """The top-level keys of a file, for error messages."""
    keys = [str(key) for key in checkpoint]
    return ", ".join(keys[:8]) + (f", ... ({len(keys)} keys)" if len(keys) > 8 else "")


def _pick_container(checkpoint: Mapping, weights: str, path: Path) -> tuple[str, Mapping]:
    """(name, state dict) of the generator that `weights` asks for; see `load_generator`."""
    if "generator_lora" in checkpoint:
        raise ValueError(f"{path}: is a LoRA file (LongLive's generator_lora); pass it with --lora beside its base")
    candidates = ("generator",) if weights == "generator" else CONTAINERS
    for name in candidates:
        if isinstance(checkpoint.get(name), Mapping):
            return name, checkpoint[name]
    # A file of tensors is the generator itself: a bare state dict, or any safetensors file.
    if weights == "generator_ema" and any(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        return "the file", checkpoint
    raise ValueError(
        f"{path}: has no {' or '.join(candidates)} state dict; it holds {describe_keys(checkpoint)}; "
        "pick another --weights or file"
    )


def _check_wan(state: dict[str, torch.Tensor], container: str, path: Path) -> None:
    """Raise unless `state` is an official-named Wan2.1 text-to-video transformer."""
    missing = [key for key in WAN_REQUIRED_KEYS if key not in state]
    if missing:
        hint = " (LoRA weights: pass them with --lora)" if any(".lora_A." in key for key in state) else ""
        raise ValueError(
            f"{path}: {container} is not a Wan video generator: it lacks {missing[0]} and holds "
            f"{describe_keys(state)}{hint}; pass a Self-Forcing-family generator checkpoint"
        )
    foreign = sorted({key.split(".")[0] for key in state} - set(WAN_MODULES))
    if foreign:
        raise ValueError(
            f"{path}: {container} has modules a Wan2.1 text-to-video transformer lacks ({', '.join(foreign)}); "
            "avgen converts text-to-video generators only"
        )


def load_generator(path: str | Path, weights: str = "generator_ema") -> dict[str, torch.Tensor]:
    """The generator of a Self-Forcing-family checkpoint, as official-named Wan tensors.

    Args:
        path: a `.pt`/`.pth` file written by torch.save, or a `.safetensors` file.
        weights: "generator_ema" (default) takes the first of `generator_ema`, `generator`,
            `model`, `state_dict` the file has, else the file itself as a bare state dict;
            "generator" takes `generator` and nothing else.

    Returns:
        {official Wan key (e.g. "blocks.0.self_attn.q.weight"): tensor}, memory-mapped from the
        file (nothing copied), in the dtype it was saved in.

    Raises ValueError (one line, naming the file) for a file that is not a weights-only
    checkpoint, has no such generator, or holds something other than a Wan T2V transformer.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r}: choose one of {', '.join(WEIGHTS)}")
    path = Path(path)
    container, raw = _pick_container(open_weights(path), weights, path)
    logger.info("%s: using %s", path, container)
    state = strip_wrappers(raw)
    _check_wan(state, container, path)
    return state


def _num_heads(dim: int, num_heads: int | None) -> int:
    """Attention heads of a `dim`-wide Wan: as given, or dim / 128 (no shape holds the count)."""
    if num_heads is not None:
        if num_heads <= 0 or dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must be a positive divisor of the checkpoint's width {dim}")
        return num_heads
    if dim % WAN_HEAD_DIM:
        raise ValueError(
            f"the checkpoint's width {dim} is not a multiple of Wan's head size {WAN_HEAD_DIM}, so its number of "
            "attention heads cannot be read off the weights; pass it (avgen convert --num-heads)"
        )
    return dim // WAN_HEAD_DIM


def wan_architecture(state: Mapping[str, torch.Tensor], num_heads: int | None = None) -> dict:
    """Wan's configuration, read off the shapes of a state dict from `load_generator`.

    Keys and values follow the official `WanModel` arguments (`inputs.pt["tiny_cfg"]` of the
    test fixture uses the same names): patch_size, in_dim, out_dim, dim, ffn_dim, freq_dim,
    text_dim, num_heads, num_layers, qk_norm, cross_attn_norm, eps. `num_heads` is not in any
    shape: pass it, or it is taken as dim / 128 (every released Wan) when that divides.
    """
    dim, in_dim, *patch_size = state["patch_embedding.weight"].shape  # (D, C, pt, ph, pw)
    layers = sorted({int(key.split(".")[1]) for key in state if key.startswith("blocks.")})
    if layers != list(range(len(layers))):
        missing = sorted(set(range(layers[-1] + 1)) - set(layers))
        raise ValueError(f"the checkpoint has blocks up to {layers[-1]} but not block {missing[0]}; the file is incomplete")
    return {
        "patch_size": tuple(patch_size),
        "in_dim": in_dim,
        "out_dim": state["head.head.weight"].shape[0] // math.prod(patch_size),
        "dim": dim,
        "ffn_dim": state["blocks.0.ffn.0.weight"].shape[0],
        "freq_dim": state["time_embedding.0.weight"].shape[1],
        "text_dim": state["text_embedding.0.weight"].shape[1],
        "num_heads": _num_heads(dim, num_heads),
        "num_layers": len(layers),
        "qk_norm": "blocks.0.self_attn.norm_q.weight" in state,
        # Official Wan's norm3 is the (optional, affine) norm before cross-attention.
        "cross_attn_norm": "blocks.0.norm3.weight" in state,
        "eps": WAN_EPS,
    }


def check_matches_base(arch: Mapping, text_dim: int, z_dim: int) -> None:
    """Raise unless a checkpoint (`wan_architecture`) fits a base's text encoder and VAE.

    Args:
        text_dim: width of the base's text encoder output (umT5-XXL: 4096).
        z_dim: latent channels of the base's VAE (Wan2.1: 16).
    """
    if arch["text_dim"] != text_dim:
        raise ValueError(
            f"the checkpoint embeds {arch['text_dim']}-wide text features but the base's text encoder gives "
            f"{text_dim}; use the Wan base folder the checkpoint was fine-tuned from"
        )
    if arch["in_dim"] != z_dim or arch["out_dim"] != z_dim:
        raise ValueError(
            f"the checkpoint reads {arch['in_dim']} and writes {arch['out_dim']} latent channels but the base's VAE "
            f"has {z_dim}; use the Wan base folder the checkpoint was fine-tuned from"
        )


def to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Wan names -> diffusers' `WanTransformer3DModel` names (= avgen's video tower).

    Uses diffusers' own `convert_wan_transformer_to_diffusers`, which renames keys and moves
    the tensors without copying them (it only reshapes Wan-Animate's motion-encoder biases).
    It empties the dict it is given, so it gets a shallow copy: `state` is left as it was.
    """
    return convert_wan_transformer_to_diffusers(dict(state))
