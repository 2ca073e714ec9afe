"""Merging LongLive-style LoRA files into a generator's weights."""

from pathlib import Path

import pytest
import safetensors.torch
import torch

from avgen.convert.checkpoint import load_generator, to_diffusers
from avgen.convert.lora import load_lora, merge_lora
from avgen.models import CausalAVTransformer

from ..conftest import OFFICIAL_TINY, needs_official_tiny

pytestmark = needs_official_tiny

CHECKPOINT = OFFICIAL_TINY / "tiny_self_forcing_format.pt"
RANK, ALPHA = 4, 8.0
# LongLive's targets: every nn.Linear inside each CausalWanAttentionBlock.
TARGETS = [f"{attention}.{projection}" for attention in ("self_attn", "cross_attn") for projection in "qkvo"] + ["ffn.0", "ffn.2"]


@pytest.fixture(scope="module")
def generator():
    return load_generator(CHECKPOINT)


def longlive_lora(generator: dict, rank: int = RANK, seed: int = 0) -> dict:
    """A LoRA over the fixture in the layout of LongLive's `get_peft_model_state_dict` output."""
    random = torch.Generator().manual_seed(seed)
    lora = {}
    for block in range(2):
        for target in TARGETS:
            out_features, in_features = generator[f"blocks.{block}.{target}.weight"].shape
            key = f"base_model.model.blocks.{block}.{target}"
            lora[f"{key}.lora_A.weight"] = torch.randn(rank, in_features, generator=random)
            lora[f"{key}.lora_B.weight"] = torch.randn(out_features, rank, generator=random)
    return lora


def save_longlive(lora: dict, path: Path) -> Path:
    """As LongLive's trainer saves it: generator and critic adapters and the step."""
    torch.save({"generator_lora": lora, "critic_lora": lora, "step": 3000}, path)
    return path


def stripped(lora: dict) -> dict:
    """What `load_lora` makes of a LongLive LoRA: keys without PEFT's prefix."""
    return {key.removeprefix("base_model.model."): value for key, value in lora.items()}


def expected_merge(weight, lora, module, scale):
    up, down = lora[f"base_model.model.{module}.lora_B.weight"], lora[f"base_model.model.{module}.lora_A.weight"]
    return weight + scale * up @ down


def test_load_strips_peft_prefix_and_takes_generator_adapters(generator, tmp_path):
    lora = longlive_lora(generator)
    loaded = load_lora(save_longlive(lora, tmp_path / "lora.pt"))
    assert loaded.keys() == stripped(lora).keys()
    torch.testing.assert_close(loaded["blocks.1.ffn.2.lora_B.weight"], lora["base_model.model.blocks.1.ffn.2.lora_B.weight"])


@pytest.mark.parametrize("layout", ["bare.pt", "peft.safetensors"])
def test_bare_and_safetensors_lora_files_load_the_same(generator, tmp_path, layout):
    lora = longlive_lora(generator)
    path = tmp_path / layout
    if layout.endswith(".safetensors"):
        safetensors.torch.save_file(lora, path)
    else:
        torch.save(lora, path)
    assert load_lora(path).keys() == load_lora(save_longlive(lora, tmp_path / "lora.pt")).keys()


def test_merge_adds_scaled_low_rank_product(generator, tmp_path):
    lora = longlive_lora(generator)
    merged = merge_lora(generator, load_lora(save_longlive(lora, tmp_path / "lora.pt")), rank=RANK, alpha=ALPHA)
    for module in ("blocks.0.self_attn.q", "blocks.1.cross_attn.o", "blocks.1.ffn.0"):
        weight = generator[f"{module}.weight"]
        torch.testing.assert_close(merged[f"{module}.weight"], expected_merge(weight, lora, module, ALPHA / RANK))
    # untouched weights are the same (memory-mapped) tensors; the input is left as it was
    assert merged["blocks.0.self_attn.q.bias"] is generator["blocks.0.self_attn.q.bias"]
    assert merged["blocks.0.modulation"] is generator["blocks.0.modulation"]
    assert not torch.equal(merged["blocks.0.self_attn.q.weight"], generator["blocks.0.self_attn.q.weight"])


def test_merged_generator_loads_into_the_video_tower(generator, tmp_path):
    merged = merge_lora(generator, load_lora(save_longlive(longlive_lora(generator), tmp_path / "lora.pt")), alpha=ALPHA)
    transformer = CausalAVTransformer(
        video_in_channels=16, video_patch_size=(1, 2, 2), video_dim=64, video_num_heads=2, video_ffn_dim=128,
        num_layers=2, text_dim=32, freq_dim=256, eps=1e-6, cross_attn_norm=True, chunk_frames=3,
    )  # fmt: skip
    transformer.video.load_state_dict(to_diffusers(merged), strict=True)


def test_merge_keeps_the_weight_dtype(generator):
    half = {key: value.to(torch.bfloat16) for key, value in generator.items()}
    merged = merge_lora(half, stripped(longlive_lora(generator)), alpha=ALPHA)
    assert merged["blocks.0.ffn.0.weight"].dtype == torch.bfloat16


def test_alpha_stored_in_the_file_is_used(generator):
    lora = stripped(longlive_lora(generator))
    lora["blocks.0.self_attn.q.alpha"] = torch.tensor(2.0)
    merged = merge_lora(generator, lora, alpha=2.0)
    module = "blocks.0.self_attn.q"
    expected = generator[f"{module}.weight"] + 2.0 / RANK * lora[f"{module}.lora_B.weight"] @ lora[f"{module}.lora_A.weight"]
    torch.testing.assert_close(merged[f"{module}.weight"], expected)
    with pytest.raises(ValueError, match="stores alpha 2 .* but alpha 8 was given"):
        merge_lora(generator, lora, alpha=ALPHA)


# ---------------------------------------------------------------- bad LoRAs


def test_wrong_rank(generator):
    with pytest.raises(ValueError, match="rank 4 .* but rank 256 was given; pass --lora-rank 4"):
        merge_lora(generator, stripped(longlive_lora(generator)), rank=256, alpha=256.0)


def test_no_alpha_anywhere(generator):
    with pytest.raises(ValueError, match="--lora-alpha"):
        merge_lora(generator, stripped(longlive_lora(generator)), rank=RANK)


def test_lora_for_a_weight_the_generator_lacks(generator):
    lora = stripped(longlive_lora(generator))
    lora["blocks.7.self_attn.q.lora_A.weight"] = torch.zeros(RANK, 64)
    lora["blocks.7.self_attn.q.lora_B.weight"] = torch.zeros(64, RANK)
    with pytest.raises(ValueError, match=r"adapts blocks\.7\.self_attn\.q\.weight, which the generator does not have"):
        merge_lora(generator, lora, alpha=ALPHA)


def test_lora_shapes_that_do_not_fit(generator):
    lora = stripped(longlive_lora(generator))
    lora["blocks.0.ffn.0.lora_A.weight"] = torch.zeros(RANK, 32)
    with pytest.raises(ValueError, match=r"lora_A \(4, 32\) and lora_B \(128, 4\), which do not fit its \(128, 64\)"):
        merge_lora(generator, lora, alpha=ALPHA)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda lora: lora.pop("base_model.model.blocks.0.ffn.2.lora_B.weight"), "blocks.0.ffn.2 has no lora_B weight"),
        (lambda lora: lora.update({"base_model.model.blocks.0.ffn.2.weight": torch.zeros(64, 128)}), "is not a LoRA weight"),
        (lambda lora: lora.clear(), "holds no LoRA weights"),
    ],
    ids=["incomplete", "full weight", "empty"],
)
def test_bad_lora_files_get_one_line_errors_naming_the_file(generator, tmp_path, change, message):
    lora = longlive_lora(generator)
    change(lora)
    path = save_longlive(lora, tmp_path / "lora.pt")
    with pytest.raises(ValueError, match=message) as error:
        load_lora(path)
    assert "\n" not in str(error.value) and str(error.value).startswith(str(path))


def test_generator_checkpoint_is_not_a_lora():
    with pytest.raises(ValueError, match="holds no LoRA weights"):
        load_lora(CHECKPOINT)
