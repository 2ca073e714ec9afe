"""Flow-matching noise levels and the two update rules the samplers use.

x_t = (1 - t) x0 + t eps, t in [0, 1]; the network predicts a velocity (eps - x0 direction).

* "shortcut" (avgen's own models): the network is told the step size d, and predicts the
  instantaneous velocity (d = 0, multi-step mode) or the average one over a jump from t to
  t - d (few-step mode, shortcut-model style). One step is the deterministic jump
      x_{t'} = x_t - (t - t') v.
* "renoise" (the Self-Forcing family's samplers): predict the clean sample
      x0 = x_t - t v,
  then draw fresh noise and re-noise it to the next level,
      x_{t'} = (1 - t') x0 + t' eps,
  keeping x0 itself at the last level (t' = 0). The two give different videos from the same
  weights; a converted checkpoint samples with the rule it was distilled for.

Levels are either `num_inference_steps` evenly spaced ones or an explicit list of training
timesteps (0-1000, e.g. Self-Forcing's [1000, 750, 500, 250]); both are warped by `shift`
(SD3's time shift; 1 = none) exactly as the official samplers warp theirs: through the
1,000-entry float32 table of the training scheduler. A list used unwarped (CausVid's
[1000, 757, 522]) is fed to the network as it is, while the update's noise scale is the
nearest entry of that table (sigma(757) = 0.75676 at shift 8), as the official samplers
look it up: `sigmas(levels)` gives the scale of each level.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

SAMPLERS = ("shortcut", "renoise")
TRAINING_TIMESTEPS = 1000


class FlowMatchShortcutScheduler(SchedulerMixin, ConfigMixin):
    """Noise levels from t = 1 to 0 warped by `shift`, and the sampler's update rule.

    Args:
        shift: SD3's time shift (1 = uniform levels).
        sampler: "shortcut" or "renoise" (see the module docstring).
        timesteps: the official denoising timesteps (0-1000, decreasing); None: evenly spaced levels.
        warp: warp the timesteps by the shift (False: the network sees them as they are, see `sigmas`).
    """

    config_name = "scheduler_config.json"

    @register_to_config
    def __init__(self, shift: float = 1.0, sampler: str = "shortcut", timesteps: list[int] | None = None, warp: bool = True):
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if timesteps is not None and (
            not timesteps
            or any(not 0 < t <= TRAINING_TIMESTEPS for t in timesteps)
            or any(a <= b for a, b in zip(timesteps, timesteps[1:]))
        ):
            raise ValueError(f"timesteps must decrease within (0, {TRAINING_TIMESTEPS}], got {timesteps}")

    @property
    def default_steps(self) -> int | None:
        """The number of steps an explicit timestep list fixes; None when any number works."""
        timesteps = self.config.timesteps
        return None if timesteps is None else len(timesteps)

    def _warp(self, t: torch.Tensor) -> torch.Tensor:
        shift = self.config.shift
        return shift * t / (1 + (shift - 1) * t)

    def levels(self, num_inference_steps: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(num_inference_steps + 1,) float32 levels, 1 first and 0 last."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        timesteps = self.config.timesteps
        if timesteps is None:
            return self._warp(torch.linspace(1.0, 0.0, num_inference_steps + 1, device=device))
        if num_inference_steps != len(timesteps):
            raise ValueError(
                f"this scheduler samples at its {len(timesteps)} official timesteps {list(timesteps)}; "
                f"num_inference_steps must be {len(timesteps)}, got {num_inference_steps}"
            )
        # The official samplers index the training table: sigma(k) = warp(linspace(1, 0, 1001)[1000 - k]).
        if not self.config.warp:
            return torch.tensor([*timesteps, 0], dtype=torch.float32, device=device) / TRAINING_TIMESTEPS
        table = torch.linspace(1.0, 0.0, TRAINING_TIMESTEPS + 1)
        picked = table[[TRAINING_TIMESTEPS - t for t in timesteps]]
        return torch.cat([self._warp(picked), torch.zeros(1)]).to(device)

    def sigmas(self, levels: torch.Tensor) -> torch.Tensor:
        """The noise scale of each level: the level itself, except for an unwarped timestep list,
        whose levels map to the nearest entry of the warped 1,000-step training table (0 stays 0)."""
        if self.config.timesteps is None or self.config.warp:
            return levels
        table = self._warp(torch.linspace(1.0, 0.0, TRAINING_TIMESTEPS + 1)[:-1]).to(levels.device)  # (1000,)
        nearest = table[(table[None] * TRAINING_TIMESTEPS - levels[:, None] * TRAINING_TIMESTEPS).abs().argmin(dim=1)]
        return torch.where(levels > 0, nearest, levels)

    @staticmethod
    def add_noise(clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t for per-sample t broadcast from the left, e.g. (B,) or (B, 1, Nc, 1, 1)."""
        return (1 - t) * clean + t * noise

    @staticmethod
    def step(sample: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """One deterministic jump from level t to t_next (broadcastable to the sample)."""
        return sample - (t - t_next) * velocity

    @staticmethod
    def predict_clean(sample: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 = x_t - t v, computed in float64 as the official samplers do, in the sample's dtype."""
        return (sample.double() - t.double() * velocity.double()).to(sample.dtype)

    @property
    def renoises(self) -> bool:
        return self.config.sampler == "renoise"
