"""A tiny Wan2.1-T2V base folder in both layouts, built offline from random weights.

`tiny_wan` holds the reference models in memory: a Wan2.1-shaped AutoencoderKLWan (z_dim 16,
8x spatial / 4x temporal, narrow), a umT5 encoder of width 32 and a word-level tokenizer over
the world's vocabulary (with `</s>` appended, as umT5's tokenizer does). The two folders hold
the same weights:
  * `tiny_wan_base_diffusers`: vae/, text_encoder/ (float32, sharded with an index, as the
    real Wan2.1-T2V-1.3B-Diffusers), tokenizer/;
  * `tiny_wan_base_original`: Wan2.1_VAE.pth and models_t5_umt5-xxl-enc-bf16.pth under the
    key names of Wan's own modules (wan/modules/vae.py, wan/modules/t5.py), the T5 in
    bfloat16 as the real file, and google/umt5-xxl/.
The text encoder's weights are rounded to bfloat16 so that both layouts hold exactly the same
numbers. `tiny_wan_text_embeddings(prompts)` is what a converted folder's text encoder must give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from diffusers import AutoencoderKLWan

if TYPE_CHECKING:
    import transformers

TINY_WAN_VAE = dict(
    base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]
)
TINY_WAN_UMT5 = dict(d_model=32, d_kv=16, num_heads=2, d_ff=64, num_layers=2)


@dataclass
class TinyWan:
    vae: AutoencoderKLWan
    text_encoder: transformers.UMT5EncoderModel
    tokenizer: transformers.PreTrainedTokenizerFast

    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """(B, 512, 32) float32, zero at padding: what avgen.text.encode_prompts gives."""
        from avgen.text import encode_prompts

        with torch.no_grad():
            return encode_prompts(self.text_encoder, self.tokenizer, prompts, "cpu", torch.float32)


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from avgen.text import world_vocabulary

    vocabulary = {word: i for i, word in enumerate(["<pad>", "</s>", "<unk>", *world_vocabulary()[2:]])}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def jitter(module: torch.nn.Module, scale: float, generator: torch.Generator) -> None:
    """Perturb every parameter (norm gains start at one), so that a swapped key cannot go unseen."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(1 + scale * torch.randn(parameter.shape, generator=generator))


@pytest.fixture(scope="session")
def tiny_wan() -> TinyWan:
    # imported here, not at the top, so that the other tests of this folder run without transformers
    import transformers
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**TINY_WAN_VAE).eval()
    jitter(vae, 0.2, generator)
    tokenizer = tiny_tokenizer()
    config = transformers.UMT5Config(vocab_size=len(tokenizer), **TINY_WAN_UMT5)
    text_encoder = transformers.UMT5EncoderModel(config).eval()
    jitter(text_encoder, 0.2, generator)
    with torch.no_grad():
        for parameter in text_encoder.parameters():
            parameter.copy_(parameter.bfloat16().float())
    return TinyWan(vae, text_encoder, tokenizer)


@pytest.fixture(scope="session")
def tiny_wan_text_embeddings(tiny_wan):
    """prompts -> (B, 512, 32) float32: the embeddings of a correctly converted text encoder."""
    return tiny_wan.text_embeddings


@pytest.fixture(scope="session")
def tiny_wan_base_diffusers(tiny_wan, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wan-diffusers")
    tiny_wan.vae.save_pretrained(folder / "vae")
    tiny_wan.text_encoder.save_pretrained(folder / "text_encoder", max_shard_size="30KB")
    tiny_wan.tokenizer.save_pretrained(folder / "tokenizer")
    return folder


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


OFFICIAL_TINY = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official-tiny"


@pytest.fixture(scope="session")
def official_tiny() -> Path:
    """The official samplers' outputs on a tiny random model (shared/fixtures/official-tiny, beside the checkout)."""
    if not (OFFICIAL_TINY / "inputs.pt").is_file():
        pytest.skip(f"the official-tiny fixture is not at {OFFICIAL_TINY} (it lives in shared/ beside the checkout)")
    return OFFICIAL_TINY
