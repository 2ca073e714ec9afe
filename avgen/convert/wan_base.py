"""Wan2.1-T2V-1.3B base folders -> the vae/, text_encoder/ and tokenizer/ of an avgen pipeline folder.

A Self-Forcing-family checkpoint holds only the generator; the Wan2.1 folder it was trained
from supplies the rest. That folder comes in one of two layouts:
  * diffusers (Wan-AI/Wan2.1-T2V-1.3B-Diffusers): vae/ (AutoencoderKLWan), text_encoder/
    (transformers' UMT5EncoderModel), tokenizer/. Files are hard-linked (copied across
    filesystems) unless a dtype change asks for a rewrite.
  * original (Wan-AI/Wan2.1-T2V-1.3B): Wan2.1_VAE.pth (the state dict of Wan's `WanVAE_`),
    models_t5_umt5-xxl-enc-bf16.pth (the state dict of Wan's own `T5Encoder`, the umT5-xxl
    encoder) and google/umt5-xxl/ (its tokenizer). The VAE's keys go through diffusers' own
    `convert_wan_vae_to_diffusers`; the T5's through `t5_key_to_transformers` below.

Memory stays bounded by one output shard: .pth files are opened memory-mapped and weights-only
(a file that pickles Python objects is refused, never unpickled), safetensors are read one
tensor at a time, and weights are written in shards of at most `MAX_SHARD_BYTES`. No model is
ever instantiated with real weights (the real umT5-xxl encoder is ~11 GB in bf16).

The VAE is always written in float32, whatever `dtype` asks: Wan runs it in float32 and
diffusers' Wan pipelines load it so; it is small (~0.5 GB). The text encoder is written in `dtype`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from avgen.convert.checkpoint import open_weights

if TYPE_CHECKING:
    from transformers import UMT5Config

logger = logging.getLogger(__name__)

SUBFOLDERS = ("vae", "text_encoder", "tokenizer")
# Where each component lives in each layout (the names Wan's configs/wan_t2v_1_3B.py uses).
DIFFUSERS_PATHS = {"vae": "vae", "text_encoder": "text_encoder", "tokenizer": "tokenizer"}
ORIGINAL_PATHS = {
    "vae": "Wan2.1_VAE.pth",
    "text_encoder": "models_t5_umt5-xxl-enc-bf16.pth",
    "tokenizer": "google/umt5-xxl",
}
DTYPES = (torch.bfloat16, torch.float32)
MAX_SHARD_BYTES = 2 * 1024**3  # peak memory of a rewrite is about one shard

# Wan2.1's VAE (wan/modules/vae.py `_video_vae` and `WanVAE`, the same numbers as diffusers'
# scripts/convert_wan_to_diffusers.py); base_dim and z_dim are read from the weights.
WAN21_VAE_CONFIG = dict(
    base_dim=96,
    z_dim=16,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
    latents_mean=[
        -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
    ],
    latents_std=[
        2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
        3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
    ],
)  # fmt: skip

# Wan's T5Encoder (wan/modules/t5.py, built by `umt5_xxl(encoder_only=True)`: shared_pos=False,
# so every block owns its relative position embedding, as every UMT5 layer does) -> transformers'
# UMT5EncoderModel. `shared.weight` is tied to `encoder.embed_tokens.weight` by transformers.
T5_TOP_KEYS = {
    "token_embedding.weight": "shared.weight",
    "norm.weight": "encoder.final_layer_norm.weight",
}
T5_BLOCK_KEYS = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    # Wan: fc2(fc1(x) * gelu(gate(x))); transformers: wo(gelu(wi_0(x)) * wi_1(x))
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
T5_TIED_KEYS = ("encoder.embed_tokens.weight",)  # present in some saved folders, never required


@dataclass(frozen=True)
class BaseInfo:
    """What the rest of a converted pipeline must agree with.

    text_dim: the text encoder's output width (d_model); the transformer's text_dim must equal it.
    z_dim: the VAE's latent channels; spatial/temporal_compression: pixels per latent.
    """

    layout: str  # "diffusers" or "original"
    text_dim: int
    z_dim: int
    spatial_compression: int
    temporal_compression: int


@dataclass(frozen=True)
class LazyTensor:
    """A tensor's shape and dtype, and how to read it when its shard is written."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    load: Callable[[], torch.Tensor]

    def nbytes(self, dtype: torch.dtype) -> int:
        return math.prod(self.shape) * cast_dtype(self.dtype, dtype).itemsize


# --- public API --------------------------------------------------------------------------------


def detect_layout(folder: str | Path) -> str:
    """Which layout `folder` has, "diffusers" or "original"; a ValueError naming what is missing otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--base {str(folder)!r} is not a folder: pass the Wan2.1-T2V-1.3B folder as --base")
    if (folder / DIFFUSERS_PATHS["vae"]).is_dir():
        layout, paths = "diffusers", DIFFUSERS_PATHS
    elif (folder / ORIGINAL_PATHS["vae"]).is_file():
        layout, paths = "original", ORIGINAL_PATHS
    else:
        raise ValueError(missing(folder, "VAE", "vae"))
    if not (folder / paths["text_encoder"]).exists():
        raise ValueError(missing(folder, "text encoder", "text_encoder", layout))
    if not (folder / paths["tokenizer"]).is_dir():
        raise ValueError(missing(folder, "tokenizer", "tokenizer", layout))
    return layout


def read_base_info(folder: str | Path) -> BaseInfo:
    """The BaseInfo of a Wan2.1 folder, read from configs and weight shapes (.pth files are
    memory-mapped, their tensors never read), so a caller can check it before writing anything."""
    folder = Path(folder)
    layout = detect_layout(folder)
    if layout == "diffusers":
        vae_config = diffusers_vae_config(folder / "vae")
        text_dim = diffusers_t5_config(folder / "text_encoder").d_model
    else:
        vae_config = original_vae_config(load_weights_only(folder / ORIGINAL_PATHS["vae"]))
        text_dim = umt5_config(load_weights_only(folder / ORIGINAL_PATHS["text_encoder"])).d_model
    return BaseInfo(
        layout=layout,
        text_dim=text_dim,
        z_dim=vae_config["z_dim"],
        spatial_compression=2 ** (len(vae_config["dim_mult"]) - 1),
        temporal_compression=2 ** sum(vae_config["temperal_downsample"]),
    )


def write_base_components(folder: str | Path, out: str | Path, dtype: torch.dtype) -> BaseInfo:
    """Write out/vae (AutoencoderKLWan, float32), out/text_encoder (UMT5EncoderModel, `dtype`) and
    out/tokenizer from the Wan2.1 folder `folder`, in either layout.

    Everything is built in a staging folder beside `out` and moved in at the end, so an error
    leaves `out` as it was.
    """
    folder, out = Path(folder), Path(out).resolve()
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be torch.bfloat16 or torch.float32, got {dtype}")
    info = read_base_info(folder)
    for name in SUBFOLDERS:
        if (out / name).exists():
            raise ValueError(f"{str(out / name)!r} already exists: choose a new output folder")
    paths = DIFFUSERS_PATHS if info.layout == "diffusers" else ORIGINAL_PATHS
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.wan-base-", dir=out.parent))
    try:
        if info.layout == "diffusers":
            write_diffusers_vae(folder / paths["vae"], staging / "vae")
            write_diffusers_t5(folder / paths["text_encoder"], staging / "text_encoder", dtype)
        else:
            write_original_vae(folder / paths["vae"], staging / "vae")
            write_original_t5(folder / paths["text_encoder"], staging / "text_encoder", dtype)
        link_tree(folder / paths["tokenizer"], staging / "tokenizer")
        out.mkdir(exist_ok=True)
        for name in SUBFOLDERS:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def t5_key_to_transformers(key: str) -> str:
    """A key of Wan's T5Encoder state dict -> the key of transformers' UMT5EncoderModel."""
    if key in T5_TOP_KEYS:
        return T5_TOP_KEYS[key]
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if match is None or match[2] not in T5_BLOCK_KEYS:
        raise ValueError(f"unexpected key {key!r}: the file is not the state dict of Wan's umT5 encoder (T5Encoder)")
    return f"encoder.block.{match[1]}.{T5_BLOCK_KEYS[match[2]]}"


# --- errors -------------------------------------------------------------------------------------


def missing(folder: Path, what: str, component: str, layout: str | None = None) -> str:
    """One line: which component `folder` lacks, where it was looked for, and what to pass."""
    places = {
        "diffusers": f"{DIFFUSERS_PATHS[component]}/",
        "original": ORIGINAL_PATHS[component] + ("/" if component == "tokenizer" else ""),
    }
    where = f"{places[layout]} in the {layout} layout" if layout else " or ".join(places.values())
    return f"{str(folder)!r} has no {what} ({where}): pass the Wan2.1-T2V-1.3B folder as --base"


def check_weights(
    tensors: dict[str, LazyTensor], model: torch.nn.Module, what: str, optional: tuple[str, ...] = ()
) -> None:
    """ValueError unless `tensors` has exactly the keys and shapes of `model` (built on meta)."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items() if key not in optional}
    for key, shape in expected.items():
        if key not in tensors:
            raise ValueError(f"{what} lacks {key!r}: it is not a Wan2.1 checkpoint, or it is truncated")
        if tuple(tensors[key].shape) != shape:
            raise ValueError(f"{what}: {key!r} has shape {tuple(tensors[key].shape)}, expected {shape}")
    unexpected = sorted(set(tensors) - set(expected) - set(optional))
    if unexpected:
        raise ValueError(f"{what} has unexpected weights ({unexpected[0]!r}, ...): it is not a Wan2.1 checkpoint")


# --- reading weights ----------------------------------------------------------------------------


def load_weights_only(path: Path) -> dict[str, torch.Tensor]:
    """A .pth state dict, memory-mapped (nothing read until used) and weights-only."""
    state_dict = open_weights(path)
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"{str(path)!r} is not a state dict (a dict of tensors): use the official file")
    return dict(state_dict)


def lazy_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, LazyTensor]:
    """Memory-mapped tensors as LazyTensors (reading one pages it in)."""
    return {key: LazyTensor(tuple(t.shape), t.dtype, lambda t=t: t) for key, t in state_dict.items()}


def safetensors_files(folder: Path, stem: str) -> list[Path]:
    """The files of a saved model's weights: `stem`.safetensors, or its index and the shards it names."""
    index = folder / f"{stem}.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [index, *(folder / name for name in shards)]
    else:
        files = [folder / f"{stem}.safetensors"]
    for path in files:
        if not path.is_file():
            raise ValueError(f"{str(folder)!r} has no {path.name}: re-download the folder")
    return files


def lazy_safetensors(files: list[Path], stack: ExitStack) -> dict[str, LazyTensor]:
    """Every tensor of the .safetensors among `files`, read one at a time; the files stay open while
    `stack` does."""
    tensors = {}
    for path in (path for path in files if path.suffix == ".safetensors"):
        try:
            handle = stack.enter_context(safe_open(path, framework="pt"))
        except SafetensorError as error:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file ({error}): re-download it") from None
        for key in handle.keys():
            view = handle.get_slice(key)
            dtype = safetensors_dtype(view.get_dtype())
            tensors[key] = LazyTensor(tuple(view.get_shape()), dtype, lambda h=handle, k=key: h.get_tensor(k))
    return tensors


def safetensors_dtype(name: str) -> torch.dtype:
    names = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}  # fmt: skip
    return names[name]


# --- writing weights ----------------------------------------------------------------------------


def cast_dtype(source: torch.dtype, dtype: torch.dtype) -> torch.dtype:
    """Floating tensors are written in `dtype`; integer buffers keep theirs."""
    return dtype if source.is_floating_point else source


def write_safetensors(tensors: dict[str, LazyTensor], folder: Path, stem: str, dtype: torch.dtype) -> None:
    """Write `tensors` cast to `dtype` as `stem`.safetensors, or as shards of at most
    MAX_SHARD_BYTES with a `stem`.safetensors.index.json (the layout transformers and diffusers read).
    Only one shard's tensors are in memory at a time."""
    shards, size = [[]], 0
    for key, tensor in tensors.items():
        nbytes = tensor.nbytes(dtype)
        if shards[-1] and size + nbytes > MAX_SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    names = [f"{stem}.safetensors"] if len(shards) == 1 else [
        f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)
    ]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for name, keys in zip(names, shards):
        shard = {}
        for key in keys:
            tensor = tensors[key].load()
            shard[key] = tensor.to(cast_dtype(tensor.dtype, dtype)).contiguous()
        save_file(shard, folder / name, metadata={"format": "pt"})
    if len(shards) > 1:
        weight_map = {key: name for name, keys in zip(names, shards) for key in keys}
        total = sum(tensor.nbytes(dtype) for tensor in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link `source` (following symlinks, as in a Hugging Face cache) or copy it across filesystems."""
    try:
        os.link(source, target, follow_symlinks=True)
    except OSError:
        shutil.copy2(source, target)


def link_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, copy_function=link_or_copy)


def link_files(files: list[Path], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        link_or_copy(path, target / path.name)


# --- the VAE ------------------------------------------------------------------------------------


def meta_vae(config: dict) -> AutoencoderKLWan:
    """An AutoencoderKLWan without storage: its full config and its parameters' names and shapes."""
    with torch.device("meta"):
        return AutoencoderKLWan.from_config(config)


def diffusers_vae_config(folder: Path) -> dict:
    if not (folder / "config.json").is_file():
        raise ValueError(f"{str(folder)!r} has no config.json: re-download the folder")
    config = dict(meta_vae(AutoencoderKLWan.load_config(folder)).config)
    if config["patch_size"] is not None:
        patch_size = config["patch_size"]
        raise ValueError(f"{str(folder)!r} is a Wan2.2 VAE (patch_size {patch_size}): pass a Wan2.1 folder as --base")
    return config


def original_vae_config(state_dict: dict[str, torch.Tensor]) -> dict:
    """Wan2.1's VAE config with base_dim and z_dim read from the weights (a small test VAE converts too)."""
    for key in ("encoder.conv1.weight", "conv2.weight"):
        if key not in state_dict:
            raise ValueError(f"Wan2.1_VAE.pth lacks {key!r}: it is not the state dict of Wan's VAE")
    base_dim = state_dict["encoder.conv1.weight"].shape[0]  # (base_dim, 3, 3, 3, 3)
    z_dim = state_dict["conv2.weight"].shape[0]  # post-quant 1x1x1 conv: (z_dim, z_dim, 1, 1, 1)
    if z_dim != len(WAN21_VAE_CONFIG["latents_mean"]):
        raise ValueError(f"Wan2.1_VAE.pth has {z_dim} latent channels; Wan2.1's VAE has 16: pass a Wan2.1 folder")
    return {**WAN21_VAE_CONFIG, "base_dim": base_dim, "z_dim": z_dim}


def write_original_vae(path: Path, target: Path) -> None:
    """Wan2.1_VAE.pth -> target/{config.json, diffusion_pytorch_model.safetensors} in float32."""
    state_dict = load_weights_only(path)
    model = meta_vae(original_vae_config(state_dict))
    tensors = lazy_state_dict(convert_wan_vae_to_diffusers(state_dict))
    check_weights(tensors, model, str(path))
    model.save_config(target)
    write_safetensors(tensors, target, "diffusion_pytorch_model", torch.float32)


def write_diffusers_vae(folder: Path, target: Path) -> None:
    """vae/ -> target, hard-linked when already float32, rewritten in float32 otherwise."""
    files = safetensors_files(folder, "diffusion_pytorch_model")
    with ExitStack() as stack:
        tensors = lazy_safetensors(files, stack)
        check_weights(tensors, meta_vae(diffusers_vae_config(folder)), str(folder))
        if all(cast_dtype(t.dtype, torch.float32) == t.dtype for t in tensors.values()):
            link_files([folder / "config.json", *files], target)
        else:
            logger.info("rewriting %s in float32", folder)
            link_files([folder / "config.json"], target)
            write_safetensors(tensors, target, "diffusion_pytorch_model", torch.float32)


# --- the text encoder ---------------------------------------------------------------------------


def transformers_module():
    """transformers, imported only where the text encoder is converted."""
    try:
        import transformers
    except ImportError:
        raise ValueError("converting Wan2.1's text encoder needs transformers: pip install transformers") from None
    return transformers


def meta_umt5(config: UMT5Config) -> torch.nn.Module:
    """A UMT5EncoderModel without storage: its parameters' names and shapes."""
    with torch.device("meta"):
        return transformers_module().UMT5EncoderModel(config)


def diffusers_t5_config(folder: Path) -> UMT5Config:
    if not (folder / "config.json").is_file():
        raise ValueError(f"{str(folder)!r} has no config.json: re-download the folder")
    config = transformers_module().AutoConfig.from_pretrained(folder)
    if config.model_type != "umt5":
        raise ValueError(f"{str(folder)!r} holds a {config.model_type!r} model; Wan2.1's text encoder is umT5")
    return config


def umt5_config(state_dict: dict[str, torch.Tensor]) -> UMT5Config:
    """The UMT5Config of Wan's T5Encoder state dict, every size read from the weights."""
    for key in ("token_embedding.weight", "blocks.0.pos_embedding.embedding.weight", "blocks.0.attn.q.weight",
                "blocks.0.ffn.fc1.weight"):  # fmt: skip
        if key not in state_dict:
            raise ValueError(f"{ORIGINAL_PATHS['text_encoder']} lacks {key!r}: it is not Wan's umT5 encoder state dict")
    vocab_size, d_model = state_dict["token_embedding.weight"].shape
    num_buckets, num_heads = state_dict["blocks.0.pos_embedding.embedding.weight"].shape
    inner_dim = state_dict["blocks.0.attn.q.weight"].shape[0]  # (num_heads * d_kv, d_model)
    num_layers = len({key.split(".")[1] for key in state_dict if key.startswith("blocks.")})
    return transformers_module().UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=inner_dim // num_heads,
        d_ff=state_dict["blocks.0.ffn.fc1.weight"].shape[0],
        num_layers=num_layers,
        num_heads=num_heads,
        relative_attention_num_buckets=num_buckets,
        relative_attention_max_distance=128,  # T5RelativeEmbedding's max_dist
        feed_forward_proj="gated-gelu",  # Wan's GELU is the tanh approximation, transformers' gelu_new
        layer_norm_epsilon=1e-6,
        architectures=["UMT5EncoderModel"],
    )


def write_original_t5(path: Path, target: Path, dtype: torch.dtype) -> None:
    """models_t5_umt5-xxl-enc-bf16.pth -> target/{config.json, model*.safetensors} in `dtype`."""
    state_dict = load_weights_only(path)
    config = umt5_config(state_dict)
    tensors = {t5_key_to_transformers(key): value for key, value in lazy_state_dict(state_dict).items()}
    check_weights(tensors, meta_umt5(config), str(path), optional=T5_TIED_KEYS)
    config.dtype = dtype
    config.save_pretrained(target)
    write_safetensors(tensors, target, "model", dtype)


def write_diffusers_t5(folder: Path, target: Path, dtype: torch.dtype) -> None:
    """text_encoder/ -> target, hard-linked when already in `dtype`, rewritten shard by shard otherwise."""
    config = diffusers_t5_config(folder)
    files = safetensors_files(folder, "model")
    with ExitStack() as stack:
        tensors = lazy_safetensors(files, stack)
        check_weights(tensors, meta_umt5(config), str(folder), optional=T5_TIED_KEYS)
        if all(cast_dtype(t.dtype, dtype) == t.dtype for t in tensors.values()):
            link_files([folder / "config.json", *files], target)
        else:
            logger.info("rewriting %s in %s", folder, dtype)
            config.dtype = dtype
            config.save_pretrained(target)
            write_safetensors(tensors, target, "model", dtype)
