"""A tiny Wan2.1-T2V base folder in both layouts, built offline from random weights.

`tiny_wan` holds the reference models in memory (avgen.convert.tiny_base: a Wan2.1-shaped
AutoencoderKLWan of z_dim 16, a umT5 encoder of width 32, a word-level tokenizer over the
world's vocabulary). The two folders hold the same weights:
  * `tiny_wan_base_diffusers`: vae/, text_encoder/ (float32, sharded with an index, as the
    real Wan2.1-T2V-1.3B-Diffusers), tokenizer/;
  * `tiny_wan_base_original`: Wan2.1_VAE.pth and models_t5_umt5-xxl-enc-bf16.pth under the
    key names of Wan's own modules (wan/modules/vae.py, wan/modules/t5.py), the T5 in
    bfloat16 as the real file, and google/umt5-xxl/.
The text encoder's weights are bfloat16 numbers so that both layouts hold exactly the same
values. `tiny_wan_text_embeddings(prompts)` is what a converted folder's text encoder must give.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from avgen.convert.tiny_base import TinyWan, tiny_wan as build_tiny_wan


def text_embeddings(wan: TinyWan, prompts: list[str]) -> torch.Tensor:
    """(B, 512, 32) float32, zero at padding: what avgen.text.encode_prompts gives."""
    from avgen.text import encode_prompts

    with torch.no_grad():
        return encode_prompts(wan.text_encoder, wan.tokenizer, prompts, "cpu", torch.float32)


@pytest.fixture(scope="session")
def tiny_wan() -> TinyWan:
    return build_tiny_wan(seed=0)


@pytest.fixture(scope="session")
def tiny_wan_text_embeddings(tiny_wan):
    """prompts -> (B, 512, 32) float32: the embeddings of a correctly converted text encoder."""
    return lambda prompts: text_embeddings(tiny_wan, prompts)


@pytest.fixture(scope="session")
def tiny_wan_base_diffusers(tiny_wan, tmp_path_factory) -> Path:
    return tiny_wan.save(tmp_path_factory.mktemp("wan-diffusers"))


@pytest.fixture(scope="session")
def tiny_wan_base_original(tiny_wan, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wan-original")
    vae = {vae_key_to_original(key): value for key, value in tiny_wan.vae.state_dict().items()}
    torch.save(vae, folder / "Wan2.1_VAE.pth")
    t5 = {
        umt5_key_to_original(key): value.bfloat16()
        for key, value in tiny_wan.text_encoder.state_dict().items()
        if key != "encoder.embed_tokens.weight"  # tied to shared.weight; Wan's T5Encoder has one embedding
    }
    torch.save(t5, folder / "models_t5_umt5-xxl-enc-bf16.pth")
    tiny_wan.tokenizer.save_pretrained(folder / "google" / "umt5-xxl")
    return folder


# The inverse key maps, written from Wan's modules (not derived from avgen's converter, so that a
# mistake in one shows up against the other).


def vae_key_to_original(key: str) -> str:
    """A key of diffusers' AutoencoderKLWan -> the key of Wan's WanVAE_ (wan/modules/vae.py).

    Wan's Encoder3d/Decoder3d: conv1, downsamples/upsamples (flat: per level, the residual blocks
    then the resample), middle (residual, attention, residual), head (norm, SiLU, conv); the
    model's conv1/conv2 are the (post-)quantisation convolutions.
    """
    resnet = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
              "conv_shortcut": "shortcut"}  # fmt: skip
    rules = [
        (r"quant_conv\.(.+)", lambda m: f"conv1.{m[1]}"),
        (r"post_quant_conv\.(.+)", lambda m: f"conv2.{m[1]}"),
        (r"(encoder|decoder)\.conv_in\.(.+)", lambda m: f"{m[1]}.conv1.{m[2]}"),
        (r"(encoder|decoder)\.norm_out\.(.+)", lambda m: f"{m[1]}.head.0.{m[2]}"),
        (r"(encoder|decoder)\.conv_out\.(.+)", lambda m: f"{m[1]}.head.2.{m[2]}"),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", lambda m: f"{m[1]}.middle.1.{m[2]}"),
        (r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(\w+)\.(.+)",
         lambda m: f"{m[1]}.middle.{2 * int(m[2])}.{resnet[m[3]]}.{m[4]}"),
        (r"encoder\.down_blocks\.(\d+)\.(norm1|conv1|norm2|conv2|conv_shortcut)\.(.+)",
         lambda m: f"encoder.downsamples.{m[1]}.{resnet[m[2]]}.{m[3]}"),
        (r"encoder\.down_blocks\.(\d+)\.((?:resample|time_conv)\..+)", lambda m: f"encoder.downsamples.{m[1]}.{m[2]}"),
        # decoder level b: residual blocks at 4b, 4b+1, 4b+2, its upsampler at 4b+3
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(.+)",
         lambda m: f"decoder.upsamples.{4 * int(m[1]) + int(m[2])}.{resnet[m[3]]}.{m[4]}"),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", lambda m: f"decoder.upsamples.{4 * int(m[1]) + 3}.{m[2]}"),
    ]  # fmt: skip
    for pattern, original in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return original(match)
    raise AssertionError(f"no original name for VAE key {key!r}")


def umt5_key_to_original(key: str) -> str:
    """A key of transformers' UMT5EncoderModel -> the key of Wan's T5Encoder (wan/modules/t5.py)."""
    block = {
        "layer.0.layer_norm.weight": "norm1.weight",
        "layer.0.SelfAttention.q.weight": "attn.q.weight",
        "layer.0.SelfAttention.k.weight": "attn.k.weight",
        "layer.0.SelfAttention.v.weight": "attn.v.weight",
        "layer.0.SelfAttention.o.weight": "attn.o.weight",
        "layer.0.SelfAttention.relative_attention_bias.weight": "pos_embedding.embedding.weight",
        "layer.1.layer_norm.weight": "norm2.weight",
        "layer.1.DenseReluDense.wi_0.weight": "ffn.gate.0.weight",  # the GELU-activated branch
        "layer.1.DenseReluDense.wi_1.weight": "ffn.fc1.weight",
        "layer.1.DenseReluDense.wo.weight": "ffn.fc2.weight",
    }
    top = {"shared.weight": "token_embedding.weight", "encoder.final_layer_norm.weight": "norm.weight"}
    if key in top:
        return top[key]
    match = re.fullmatch(r"encoder\.block\.(\d+)\.(.+)", key)
    assert match and match[2] in block, f"no original name for umT5 key {key!r}"
    return f"blocks.{match[1]}.{block[match[2]]}"
