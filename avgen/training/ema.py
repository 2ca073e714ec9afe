"""An exponential moving average of a module's weights, kept beside it for export and distillation targets."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for average, weight in zip(self.shadow.parameters(), module.parameters()):
            average.lerp_(weight.detach(), 1.0 - self.decay)
