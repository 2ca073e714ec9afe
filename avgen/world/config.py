"""The world's configuration: frame rate, image size, sample rate and how often things happen."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# Bump when rendering or synthesis changes, so that on-disk caches of clips are not reused.
WORLD_VERSION = 1


@dataclass(frozen=True)
class WorldConfig:
    """Rendering settings of the talking-character world.

    The timeline is cut into blocks of `block_seconds`; each block's speech, blinks and
    events are drawn from its own seed and finish inside the block, so any frame can be
    rendered without rendering what came before (streaming, random access).
    """

    fps: int = 16
    height: int = 64
    width: int = 64
    sample_rate: int = 16000
    block_seconds: float = 4.0
    jump_probability: float = 0.5  # per block, for clips that have the jump event
    chime_probability: float = 0.5  # per block, for clips that have the chime event
    supersample: int = 4  # anti-aliasing factor per axis

    def __post_init__(self):
        if self.fps <= 0 or self.sample_rate <= 0:
            raise ValueError(f"fps and sample_rate must be positive, got {self.fps} and {self.sample_rate}")
        if self.sample_rate % self.fps:
            raise ValueError(
                f"sample_rate ({self.sample_rate}) must be a multiple of fps ({self.fps}) "
                "so that every frame covers a whole number of audio samples"
            )
        for name in ("height", "width"):
            size = getattr(self, name)
            if size < 32 or size % 2:
                raise ValueError(f"{name} must be an even number >= 32 (H.264 needs even sizes), got {size}")
        block_frames = self.block_seconds * self.fps
        if block_frames < self.fps or block_frames != int(block_frames):
            raise ValueError(
                f"block_seconds ({self.block_seconds}) must be at least 1 s and a whole number of frames at {self.fps} fps"
            )
        for name in ("jump_probability", "chime_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {self.supersample}")

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    @property
    def block_frames(self) -> int:
        return int(self.block_seconds * self.fps)

    @property
    def block_samples(self) -> int:
        return self.block_frames * self.samples_per_frame

    def fingerprint(self) -> str:
        """Short hash of this config and WORLD_VERSION: the key of on-disk clip caches."""
        payload = json.dumps([WORLD_VERSION, dataclasses.asdict(self)], sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]
