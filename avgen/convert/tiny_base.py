"""A random Wan2.1-T2V base folder at the sizes of the official-tiny fixture's generator.

    python -m avgen.convert.tiny_base runs/footage/wan-base

The real base (Wan-AI/Wan2.1-T2V-1.3B-Diffusers: the Wan VAE, umT5-XXL and its tokenizer)
cannot be downloaded here. This stand-in has its diffusers layout and the sizes the fixture's
tiny generator reads: an AutoencoderKLWan of 16 latent channels, 8x spatial and 4x temporal
compression, and a umT5 encoder of width 32 with a word-level tokenizer over the world's
vocabulary. `avgen convert` takes it as `--base`, so the conversion and the footage recipe
(train/from_video_model.sh) run end to end offline. Its weights are random, every parameter
(norm gains too) perturbed so that a swapped key cannot go unseen: its VAE's latent space is not a
learned one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import transformers
    from diffusers import AutoencoderKLWan

TINY_WAN_VAE = dict(
    base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]
)
TINY_WAN_UMT5 = dict(d_model=32, d_kv=16, num_heads=2, d_ff=64, num_layers=2)


@dataclass
class TinyWan:
    vae: AutoencoderKLWan
    text_encoder: transformers.UMT5EncoderModel
    tokenizer: transformers.PreTrainedTokenizerFast

    def save(self, folder: str | Path) -> Path:
        """vae/, text_encoder/ (sharded with an index, as the real base) and tokenizer/ under `folder`."""
        folder = Path(folder)
        self.vae.save_pretrained(folder / "vae")
        self.text_encoder.save_pretrained(folder / "text_encoder", max_shard_size="30KB")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        return folder


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """Word-level over the world's vocabulary, `</s>` appended as umT5's tokenizer does."""
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


def _jitter(module: torch.nn.Module, scale: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(1 + scale * torch.randn(parameter.shape, generator=generator))


def tiny_wan(seed: int = 0) -> TinyWan:
    """The three components, in eval mode; the text encoder's weights are bfloat16 numbers (as the
    original layout's file stores them), so both layouts of one base hold the same values."""
    import transformers
    from diffusers import AutoencoderKLWan

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(**TINY_WAN_VAE).eval()
    _jitter(vae, 0.2, generator)
    tokenizer = tiny_tokenizer()
    text_encoder = transformers.UMT5EncoderModel(transformers.UMT5Config(vocab_size=len(tokenizer), **TINY_WAN_UMT5)).eval()
    _jitter(text_encoder, 0.2, generator)
    with torch.no_grad():
        for parameter in text_encoder.parameters():
            parameter.copy_(parameter.bfloat16().float())
    return TinyWan(vae, text_encoder, tokenizer)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write (vae/, text_encoder/, tokenizer/)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"saved {tiny_wan(args.seed).save(args.out)}")
