"""Faster CPU kernels for the Wan VAE's layers: same parameters, same results.

At avgen-tiny's sizes (batch 1 while streaming, 64x64 frames, 8-64 channels) diffusers' Wan
VAE runs on slow CPU paths:
  * PyTorch sends its 3D convolutions to the reference kernel (`slow_conv3d_forward`): oneDNN
    is only picked for batches above one or large inputs. The same convolution done as one 2D
    convolution whose input stacks the kernel's time taps on the channel axis goes to oneDNN.
    Measured on one core, 3x3x3, (1, 8, 6, 64, 64): 5.1 ms as conv3d, 1.6 ms stacked.
  * oneDNN converts channels-first inputs to its channels-last blocks and back on every call:
    a 16-channel 3x3 convolution at 64x64 in bf16 took 2.17 ms from NCHW, 1.09 ms from NHWC.
    So on CPU activations stay channels-last (`torch.channels_last_3d`) from the first
    convolution to the last; the layers below that would turn them back are replaced too.
  * `F.normalize` over the channel axis of a (B, C, T, H, W) tensor reduces with a stride:
    5.2 ms against 0.3 ms for a sum of squares over the same axis, (1, 8, 12, 64, 64).
Other devices keep the stock kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import DupUp3D, WanCausalConv3d, WanRMS_norm, WanUpsample
from torch import nn


class TimeTapConv3d(WanCausalConv3d):
    """Wan's causal 3D convolution; on CPU, one channels-last 2D convolution over stacked time taps."""

    def forward(self, x: torch.Tensor, cache_x: torch.Tensor | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or self.groups != 1:
            return super().forward(x, cache_x)
        batch, channels, _, height, width = x.shape
        frames = x.permute(0, 2, 3, 4, 1)  # (B, T, H, W, C): a view of a channels-last input
        time_padding = self._padding[4]
        if time_padding:
            past = [] if cache_x is None else [cache_x.to(x.device).permute(0, 2, 3, 4, 1)]
            missing = time_padding - sum(p.shape[1] for p in past)
            zeros = [frames.new_zeros(batch, missing, height, width, channels)] if missing > 0 else []
            frames = torch.cat([*zeros, *past, frames], dim=1)[:, max(-missing, 0) :]
        taps, stride = self.kernel_size[0], self.stride[0]
        frames_out = (frames.shape[1] - taps) // stride + 1
        last = stride * (frames_out - 1) + 1
        stacked = torch.cat([frames[:, k : k + last : stride] for k in range(taps)], dim=-1)  # (B, T', H, W, kt C)
        stacked = stacked.reshape(batch * frames_out, height, width, taps * channels).permute(0, 3, 1, 2)
        out = F.conv2d(
            stacked,  # (B T', kt C, H, W), channels-last
            self._planar(self.weight),
            self.bias,
            stride=self.stride[1:],
            padding=(self._padding[2], self._padding[0]),
            dilation=self.dilation[1:],
        )  # (B T', C', H', W'), channels-last
        out = out.permute(0, 2, 3, 1)
        return out.reshape(batch, frames_out, *out.shape[1:]).permute(0, 4, 1, 2, 3)  # (B, C', T', H', W')

    def _planar(self, weight: torch.Tensor) -> torch.Tensor:
        """(C', C, kt, kh, kw) -> channels-last (C', kt C, kh, kw), kept while the weight is unchanged and no
        gradient is taken (a decoder streams one latent frame per call; the larger weights took a millisecond to copy)."""

        def planar():
            return weight.transpose(1, 2).reshape(weight.shape[0], -1, *weight.shape[3:]).contiguous(memory_format=torch.channels_last)

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


class ChannelsLastUpsample(WanUpsample):
    """Wan's frame-wise 2x upsampling; on CPU its (B T, C, H, W) output is channels-last, for the convolution after it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        return nn.Upsample.forward(self, x.to(torch.float32, memory_format=torch.channels_last)).type_as(x)


class ChannelsLastDupUp3D(DupUp3D):
    """The decoder's shortcut around an upsampling (channels repeated into time and space); on CPU
    channels-last, like the upsampled branch it is added to."""

    def forward(self, x: torch.Tensor, first_chunk: bool = False) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x, first_chunk)
        batch, _, frames, height, width = x.shape
        ft, fs = self.factor_t, self.factor_s
        x = x.permute(0, 2, 3, 4, 1).repeat_interleave(self.repeats, dim=-1)  # (B, T, H, W, C' ft fs fs)
        x = x.view(batch, frames, height, width, self.out_channels, ft, fs, fs)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(batch, frames * ft, height * fs, width * fs, self.out_channels)
        if first_chunk:
            x = x[:, ft - 1 :]
        return x.permute(0, 4, 1, 2, 3)  # (B, C', T ft, H fs, W fs), channels-last


FASTER = {
    WanCausalConv3d: TimeTapConv3d,
    WanRMS_norm: SumOfSquaresRMSNorm,
    WanUpsample: ChannelsLastUpsample,
    DupUp3D: ChannelsLastDupUp3D,
}


def use_faster_kernels(model: nn.Module) -> None:
    """Switch every Wan layer in `model` that has a class above to it, in place."""
    for module in model.modules():
        faster = FASTER.get(type(module))
        if faster is not None:
            module.__class__ = faster
