"""The learning-rate schedule every trainer in avgen uses: linear warm-up, then cosine decay to a tenth."""

from __future__ import annotations

import math


def warmup_cosine(step: int, base: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate at 0-based `step`."""
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
