"""Faster CPU kernels for two of the Oobleck audio decoder's layers: same parameters, same results.

At avgen-tiny's sizes (batch 1, 32-256 channels, a few thousand samples per chunk) the stock
layers run on slow CPU paths:
  * a pointwise (kernel 1) Conv1d goes through oneDNN's convolution, which converts the
    (B, C, L) input to its own layout and back: 0.48 ms at 32 channels x 4,000 samples, where
    the same product as a matrix multiplication on the input as it lies takes a tenth of that;
  * Snake (x + sin(a x)^2 / b) recomputes exp(a) and exp(b) every call and makes a pass over
    the signal per operation; with a and b fixed (no gradient) they are kept, and the square
    and the add happen in place / fused.
Other devices keep the stock layers.
"""

from __future__ import annotations

import torch
from diffusers.models.autoencoders.autoencoder_oobleck import Snake1d
from torch import nn


class PointwiseConv1d(nn.Conv1d):
    """A kernel-1 Conv1d; on CPU, a matrix product with the input in its own (B, C, L) layout."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if x.device.type != "cpu" or self.kernel_size != (1,) or self.stride != (1,) or self.groups != 1 or self.padding != (0,):
            return super()._conv_forward(x, weight, bias)
        out = torch.matmul(weight[:, :, 0], x)  # (C', C) @ (B, C, L) -> (B, C', L)
        return out if bias is None else out.add_(bias[:, None])


class CachedSnake1d(Snake1d):
    """Snake, with exp(alpha) and 1 / exp(beta) kept while they are unchanged and no gradient is taken."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.device.type != "cpu" or torch.is_grad_enabled() or not self.logscale:
            return super().forward(hidden_states)
        key = (self.alpha._version, self.beta._version, self.alpha.data_ptr(), self.beta.data_ptr(), self.alpha.dtype, torch.is_inference_mode_enabled())
        if getattr(self, "_key", None) != key:
            self._key = key
            self._alpha, self._inverse_beta = torch.exp(self.alpha), (torch.exp(self.beta) + 1e-9).reciprocal()
        x = hidden_states.reshape(hidden_states.shape[0], hidden_states.shape[1], -1)  # (B, C, L)
        waves = torch.sin(self._alpha * x).square_()
        return torch.addcmul(x, self._inverse_beta, waves).reshape(hidden_states.shape)



def use_faster_kernels(model: nn.Module) -> None:
    """Switch the pointwise convolutions and the Snake activations in `model` to the classes above, in place."""
    for module in model.modules():
        if type(module) is nn.Conv1d and module.kernel_size == (1,):
            module.__class__ = PointwiseConv1d
        elif type(module) is Snake1d:
            module.__class__ = CachedSnake1d
