"""Which dtype the video codec decodes in: bfloat16 where the hardware computes it natively.

The video codec's decoder is most of a small model's streaming time on a CPU (avgen-tiny:
about 60 ms of a 130-ms chunk on two threads), and it is bound by memory traffic and small
convolutions that oneDNN runs about 1.7x faster in bfloat16 on CPUs with AVX-512 BF16 or AMX.
Measured on held-out world clips (41 latent frames, `avgen eval codecs`): 30.74 dB PSNR in
float32, 30.72 dB in bfloat16; the two decodes are 59 dB apart (a mean of 0.14 of a uint8
level). The audio codec stays float32: in bfloat16 its output is only 32 dB from float32's,
an audible hiss, for a third of its 20 ms.

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
    if next(codec.parameters()).dtype != dtype:
        nn.Module.to(codec, dtype=dtype)
