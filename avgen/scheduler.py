"""Flow-matching noise levels and the one update rule both sampling modes share.

x_t = (1 - t) x0 + t eps, t in [0, 1]; the network predicts a velocity (eps - x0 direction):
the instantaneous one when told step size d = 0 (multi-step mode) or the average over a
jump from t to t - d (few-step mode, shortcut-model style). Either way one step is
    x_{t'} = x_t - (t - t') v.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin


class FlowMatchShortcutScheduler(SchedulerMixin, ConfigMixin):
    """Noise levels for n steps from t = 1 to 0, warped by `shift` (SD3's time shift; 1 = uniform)."""

    config_name = "scheduler_config.json"

    @register_to_config
    def __init__(self, shift: float = 1.0):
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")

    def levels(self, num_inference_steps: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(num_inference_steps + 1,) float32 levels, 1 first and 0 last."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        t = torch.linspace(1.0, 0.0, num_inference_steps + 1, device=device)
        shift = self.config.shift
        return shift * t / (1 + (shift - 1) * t)

    @staticmethod
    def add_noise(clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t for per-sample t broadcast from the left, e.g. (B,) or (B, 1, Nc, 1, 1)."""
        return (1 - t) * clean + t * noise

    @staticmethod
    def step(sample: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """One jump from level t to t_next (broadcastable to the sample)."""
        return sample - (t - t_next) * velocity
