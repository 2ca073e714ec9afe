"""Which dtype the video codec decodes in: bfloat16 where the hardware computes it natively.

The video codec's decoder is most of a small model's streaming time on a CPU (avgen-tiny:
about 60 ms of a 130-ms chunk on two threads), and it is bound by memory traffic and small
convolutions that oneDNN runs about 1.7x faster in bfloat16 on CPUs with AVX-512 BF16 or AMX.
On 50 held-out world clips of 161 frames (`avgen eval codecs --vae-dtype fp32|bf16`): mean PSNR
30.415 dB in float32, 30.408 in bfloat16 (minimum 25.774 / 25.771), attributes read back and
lip sync after the round trip 100 % in both. The audio codec stays float32: in bfloat16 its
output is 32 dB (SNR) from float32's, and it is the smaller part (about 20 ms a chunk).

Library users choose the dtype the diffusers way (`pipe.vae.to(torch.bfloat16)`); the command
line and the app ask `codec_dtype("auto", device)`.
"""

from __future__ import annotations

import torch
from torch import nn

CHOICES = ("auto", "fp32", "bf16")


def native_bfloat16(device: torch.device | str) -> bool:
    """True where bfloat16 convolutions run on hardware that computes them natively."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.cpu._is_avx512_bf16_supported()
    return False


def codec_dtype(choice: str, device: torch.device | str) -> torch.dtype:
    """"fp32", "bf16", or "auto" (bfloat16 where `native_bfloat16`, else float32)."""
    if choice not in CHOICES:
        raise ValueError(f"unknown codec dtype {choice!r}: choose one of {', '.join(CHOICES)}")
    if choice == "auto":
        return torch.bfloat16 if native_bfloat16(device) else torch.float32
    return torch.bfloat16 if choice == "bf16" else torch.float32


def cast_codec(codec: nn.Module, dtype: torch.dtype) -> None:
    """Cast a codec in place, without diffusers' warning (ModelMixin.to warns on every dtype change,
    even for models with no float32-only modules, as the codecs are)."""
    if codec.dtype != dtype:
        nn.Module.to(codec, dtype=dtype)
