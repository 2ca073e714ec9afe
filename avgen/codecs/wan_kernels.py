"""Faster CPU kernels for two of the Wan VAE's layers: same parameters, same results.

At avgen-tiny's sizes (batch 1 while streaming, 64x64 frames, 8-64 channels) two layers of
diffusers' Wan VAE run on slow CPU paths:
  * PyTorch sends its 3D convolutions to the reference kernel (`slow_conv3d_forward`): oneDNN
    is only picked for batches above one or large inputs. The same convolution done as one 2D
    convolution whose input stacks the kernel's time taps on the channel axis goes to oneDNN.
    Measured on one core, 3x3x3, (1, 8, 6, 64, 64): 5.1 ms as conv3d, 1.6 ms stacked.
  * `F.normalize` over the channel axis of a (B, C, T, H, W) tensor reduces with a stride:
    5.2 ms against 0.3 ms for a sum of squares over the same axis, (1, 8, 12, 64, 64).
Together they made the tiny decoder 2-3x slower than it needs to be. Other devices keep the
stock kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm
from torch import nn


class TimeTapConv3d(WanCausalConv3d):
    """Wan's causal 3D convolution; on CPU, as a 2D convolution over stacked time taps."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if x.device.type != "cpu" or self.groups != 1:
            return super()._conv_forward(x, weight, bias)
        batch, channels, frames, height, width = x.shape  # already padded by WanCausalConv3d.forward
        taps, stride = weight.shape[2], self.stride[0]
        frames_out = (frames - taps) // stride + 1
        last = stride * (frames_out - 1) + 1
        by_frame = x.transpose(1, 2)  # (B, T, C, H, W)
        stacked = torch.cat([by_frame[:, k : k + last : stride] for k in range(taps)], dim=2)  # (B, T', kt C, H, W)
        planar = self._planar(weight)  # (C', kt C, kh, kw)
        out = F.conv2d(
            stacked.reshape(batch * frames_out, taps * channels, height, width),
            planar,
            bias,
            stride=self.stride[1:],
            dilation=self.dilation[1:],
        )  # (B T', C', H', W')
        return out.view(batch, frames_out, *out.shape[1:]).transpose(1, 2)  # (B, C', T', H', W')

    def _planar(self, weight: torch.Tensor) -> torch.Tensor:
        """(C', C, kt, kh, kw) -> (C', kt C, kh, kw), kept while the weight is unchanged and no gradient is taken
        (a decoder streams one latent frame per call; the larger weights took a millisecond to copy)."""
        planar = lambda: weight.transpose(1, 2).reshape(weight.shape[0], -1, *weight.shape[3:])  # noqa: E731
        if torch.is_grad_enabled():
            return planar()
        key = (weight._version, weight.data_ptr(), weight.dtype, torch.is_inference_mode_enabled())
        if getattr(self, "_planar_key", None) != key:
            self._planar_key, self._planar_weight = key, planar()
        return self._planar_weight


class SumOfSquaresRMSNorm(WanRMS_norm):
    """Wan's RMS norm (x / max(|x|, 1e-12) over channels, scaled), without `F.normalize`'s strided reduction."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        axis = 1 if self.channel_first else -1
        x32 = x.float()
        normalized = x32 * torch.rsqrt(x32.square().sum(axis, keepdim=True).clamp_min(1e-24))
        return normalized.to(x.dtype) * self.scale * self.gamma + self.bias


def use_faster_kernels(model: nn.Module) -> None:
    """Switch every Wan causal convolution and RMS norm in `model` to the classes above, in place."""
    for module in model.modules():
        if type(module) is WanCausalConv3d:
            module.__class__ = TimeTapConv3d
        elif type(module) is WanRMS_norm:
            module.__class__ = SumOfSquaresRMSNorm
