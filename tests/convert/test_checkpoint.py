"""Loading Self-Forcing-family checkpoints: containers, wrapper prefixes, architecture, diffusers names, bad files."""

import math
import os
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch

from avgen.convert.checkpoint import check_matches_base, load_generator, to_diffusers, wan_architecture
from avgen.models import CausalAVTransformer

from ..conftest import OFFICIAL_TINY as FIXTURES
from ..conftest import needs_official_tiny

pytestmark = needs_official_tiny

CHECKPOINT = FIXTURES / "tiny_self_forcing_format.pt"


class Opaque:
    """Something a weights-only load must refuse to unpickle."""


@pytest.fixture(scope="module")
def official():
    """The fixture file's containers, as saved: {"generator", "generator_ema", "critic"}."""
    return torch.load(CHECKPOINT, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def tiny_cfg():
    return torch.load(FIXTURES / "inputs.pt", map_location="cpu", weights_only=True)["tiny_cfg"]


def tiny_transformer() -> CausalAVTransformer:
    """avgen's transformer with the fixture's video tower (it also builds an audio tower)."""
    return CausalAVTransformer(
        video_in_channels=16, video_patch_size=(1, 2, 2), video_dim=64, video_num_heads=2, video_ffn_dim=128,
        num_layers=2, text_dim=32, freq_dim=256, eps=1e-6, cross_attn_norm=True, chunk_frames=3,
    )  # fmt: skip


def unprefixed(state: dict) -> dict:
    """The fixture's `model.`-prefixed keys without the prefix."""
    return {key.removeprefix("model."): value for key, value in state.items()}


def assert_same_weights(loaded: dict, expected: dict) -> None:
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)


def is_mapped_from(tensor: torch.Tensor, path: Path) -> bool:
    """Whether the tensor's memory lies in a mapping of `path` (Linux /proc/self/maps)."""
    target, pointer = os.path.realpath(path), tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == target:
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            if start <= pointer < end:
                return True
    return False


def official_wan_shapes(dim, ffn_dim, text_dim, num_layers, in_dim=16, patch=(1, 2, 2), freq_dim=256) -> dict:
    """{official key: shape} of a Wan2.1 T2V transformer (qk_norm, cross_attn_norm)."""
    out = in_dim * math.prod(patch)
    shapes = {
        "patch_embedding.weight": (dim, in_dim, *patch), "patch_embedding.bias": (dim,),
        "text_embedding.0.weight": (dim, text_dim), "text_embedding.0.bias": (dim,),
        "text_embedding.2.weight": (dim, dim), "text_embedding.2.bias": (dim,),
        "time_embedding.0.weight": (dim, freq_dim), "time_embedding.0.bias": (dim,),
        "time_embedding.2.weight": (dim, dim), "time_embedding.2.bias": (dim,),
        "time_projection.1.weight": (6 * dim, dim), "time_projection.1.bias": (6 * dim,),
        "head.modulation": (1, 2, dim), "head.head.weight": (out, dim), "head.head.bias": (out,),
    }  # fmt: skip
    for i in range(num_layers):
        block = f"blocks.{i}"
        shapes |= {f"{block}.modulation": (1, 6, dim), f"{block}.norm3.weight": (dim,), f"{block}.norm3.bias": (dim,)}
        for attention in ("self_attn", "cross_attn"):
            for projection in "qkvo":
                shapes |= {f"{block}.{attention}.{projection}.weight": (dim, dim), f"{block}.{attention}.{projection}.bias": (dim,)}
            shapes |= {f"{block}.{attention}.norm_q.weight": (dim,), f"{block}.{attention}.norm_k.weight": (dim,)}
        shapes |= {
            f"{block}.ffn.0.weight": (ffn_dim, dim), f"{block}.ffn.0.bias": (ffn_dim,),
            f"{block}.ffn.2.weight": (dim, ffn_dim), f"{block}.ffn.2.bias": (dim,),
        }  # fmt: skip
    return shapes


# ---------------------------------------------------------------- containers and prefixes


def test_default_takes_ema_without_the_model_prefix(official):
    assert_same_weights(load_generator(CHECKPOINT), unprefixed(official["generator_ema"]))


def test_generator_weights_are_the_other_container(official):
    ema, generator = load_generator(CHECKPOINT), load_generator(CHECKPOINT, weights="generator")
    assert_same_weights(generator, unprefixed(official["generator"]))
    assert not torch.equal(ema["blocks.0.self_attn.q.weight"], generator["blocks.0.self_attn.q.weight"])


def test_loaded_tensors_stay_memory_mapped():
    state = load_generator(CHECKPOINT)
    assert all(is_mapped_from(state[key], CHECKPOINT) for key in ("patch_embedding.weight", "blocks.1.ffn.2.weight"))


@pytest.mark.parametrize(
    "rename",
    [
        # FSDP wraps the model and each block; the EMA shadow keeps those segments.
        lambda key: key.replace("model.", "model._fsdp_wrapped_module.", 1).replace(".self_attn.", "._fsdp_wrapped_module.self_attn."),
        lambda key: "module." + re.sub(r"(blocks\.\d+\.)", r"\1_checkpoint_wrapped_module.", key),
        lambda key: key.replace("model.", "_orig_mod.model.", 1),
    ],
    ids=["fsdp", "ddp+checkpointing", "compiled"],
)
def test_wrapped_keys_load_the_same(official, tmp_path, rename):
    wrapped = {name: {rename(key): value for key, value in state.items()} for name, state in official.items()}
    path = tmp_path / "wrapped.pt"
    torch.save(wrapped, path)
    assert_same_weights(load_generator(path), unprefixed(official["generator_ema"]))


@pytest.mark.parametrize("layout", ["bare", "model", "state_dict", "generator"])
def test_single_generator_files_load_the_same(official, tmp_path, layout):
    state = official["generator_ema"]
    path = tmp_path / "single.pth"
    torch.save(state if layout == "bare" else {layout: state, "step": 3000}, path)
    assert_same_weights(load_generator(path), unprefixed(state))


def test_safetensors_loads_the_same_and_mapped(official, tmp_path):
    path = tmp_path / "generator.safetensors"
    safetensors.torch.save_file(official["generator_ema"], path)
    state = load_generator(path)
    assert_same_weights(state, unprefixed(official["generator_ema"]))
    assert is_mapped_from(state["blocks.0.ffn.0.weight"], path)


# ---------------------------------------------------------------- architecture and base


def test_architecture_read_off_the_shapes_is_the_fixture_config(tiny_cfg):
    arch = wan_architecture(load_generator(CHECKPOINT), num_heads=2)
    assert arch == {key: tiny_cfg[key] for key in arch}


def test_heads_are_required_when_the_width_is_not_wan_sized():
    state = load_generator(CHECKPOINT)
    with pytest.raises(ValueError, match="--num-heads"):
        wan_architecture(state)
    with pytest.raises(ValueError, match="divisor"):
        wan_architecture(state, num_heads=3)


def test_check_matches_base():
    arch = wan_architecture(load_generator(CHECKPOINT), num_heads=2)
    check_matches_base(arch, text_dim=32, z_dim=16)
    with pytest.raises(ValueError, match="text encoder gives 4096"):
        check_matches_base(arch, text_dim=4096, z_dim=16)
    with pytest.raises(ValueError, match="VAE has 48"):
        check_matches_base(arch, text_dim=32, z_dim=48)


# ---------------------------------------------------------------- diffusers names


def test_converted_weights_load_strictly_into_the_video_tower():
    state = load_generator(CHECKPOINT)
    converted = to_diffusers(state)
    tiny_transformer().video.load_state_dict(converted, strict=True)
    # moved, not copied, and the caller's dict left as it was
    assert converted["blocks.1.attn2.to_out.0.weight"] is state["blocks.1.cross_attn.o.weight"]
    assert converted["blocks.0.norm2.weight"] is state["blocks.0.norm3.weight"]
    assert len(state) == len(converted)


def test_wan_1_3b_layout_converts_to_the_default_tower():
    shapes = official_wan_shapes(dim=64, ffn_dim=128, text_dim=32, num_layers=2)
    assert shapes == {key: tuple(value.shape) for key, value in load_generator(CHECKPOINT).items()}
    state = {key: torch.empty(shape, device="meta") for key, shape in official_wan_shapes(1536, 8960, 4096, 30).items()}
    arch = wan_architecture(state)
    assert (arch["num_heads"], arch["num_layers"], arch["text_dim"]) == (12, 30, 4096)
    check_matches_base(arch, text_dim=4096, z_dim=16)
    with torch.device("meta"):
        transformer = CausalAVTransformer(
            video_in_channels=16, video_patch_size=(1, 2, 2), video_dim=1536, video_num_heads=12, video_ffn_dim=8960,
            num_layers=30, text_dim=4096, freq_dim=256, eps=1e-6, cross_attn_norm=True,
        )  # fmt: skip
    transformer.video.load_state_dict(to_diffusers(state), strict=True, assign=True)


# ---------------------------------------------------------------- bad files


def _write_bad_file(kind: str, official: dict, tmp_path: Path) -> tuple[Path, dict]:
    """(path, load_generator kwargs) for each kind of file users pass by mistake."""
    path = tmp_path / f"{kind}.pt"
    kwargs = {}
    if kind == "random bytes":
        path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).numpy().tobytes())
    elif kind == "text":
        path.write_text("prompt: a cat\n")
    elif kind == "truncated":
        whole = CHECKPOINT.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "bad safetensors":
        path = tmp_path / "broken.safetensors"
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    elif kind == "pickled objects":
        torch.save({"generator": official["generator"], "config": Opaque()}, path)
    elif kind == "critic":
        torch.save(official["critic"], path)
    elif kind == "resnet":
        torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "bn1.weight": torch.ones(8), "fc.weight": torch.zeros(10, 8)}, path)
    elif kind == "no generator container":
        torch.save({"generator_ema": official["generator_ema"], "critic": official["critic"]}, path)
        kwargs = {"weights": "generator"}
    elif kind == "lora file":
        torch.save({"generator_lora": {"base_model.model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 64)}}, path)
    elif kind == "image-to-video":
        torch.save({**official["generator_ema"], "model.img_emb.proj.1.weight": torch.zeros(64, 64)}, path)
    elif kind == "not a dict":
        torch.save(torch.zeros(3), path)
    elif kind == "folder":
        path = tmp_path
    elif kind == "missing":
        path = tmp_path / "nowhere.pt"
    return path, kwargs


BAD_FILES = {
    "random bytes": "not a PyTorch checkpoint",
    "text": "not a PyTorch checkpoint",
    "truncated": "partial download",
    "bad safetensors": "not a readable safetensors",
    "pickled objects": "Opaque",
    "critic": "not a Wan video generator",
    "resnet": "lacks patch_embedding.weight",
    "no generator container": "has no generator state dict; it holds generator_ema, critic",
    "lora file": "--lora",
    "image-to-video": "img_emb",
    "not a dict": "not a state dict",
    "folder": "is a folder",
    "missing": "no such file",
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_files_get_one_line_errors_naming_the_file(official, tmp_path, kind):
    path, kwargs = _write_bad_file(kind, official, tmp_path)
    with pytest.raises(ValueError, match=BAD_FILES[kind]) as error:
        load_generator(path, **kwargs)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path))


def test_unknown_weights_choice():
    with pytest.raises(ValueError, match="generator_ema, generator"):
        load_generator(CHECKPOINT, weights="critic")


def test_missing_block_is_an_incomplete_file():
    state = {key: value for key, value in load_generator(CHECKPOINT).items() if not key.startswith("blocks.0.")}
    with pytest.raises(ValueError, match="not block 0"):
        wan_architecture(state, num_heads=2)
