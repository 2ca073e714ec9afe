"""World clips as a torch Dataset, split by character, with an on-disk cache of rendered clips."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from avgen.data.sample import to_sample
from avgen.world.attributes import SPLITS
from avgen.world.clip import Clip, sample_clip
from avgen.world.config import WorldConfig


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/avgen/world, or ~/.cache/avgen/world."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "avgen" / "world"


class WorldDataset(Dataset):
    """`num_clips` world clips of `seconds` each, all of one split's characters.

    Item i is always the same clip (its seed derives from `seed`, the split and i), and
    the "train" and "held-out" splits share no character. Rendered clips are kept in
    `cache_dir` (None: render every time) under a key of the world config, so a changed
    renderer or config never reads stale clips.

    Items are dicts:
        video: (3, F, H, W) float32 in [-1, 1]
        audio: (1, S) float32 in [-1, 1], S = F * samples_per_frame
        prompt: str
        character: int, the character id
        seed: int, the clip seed
    """

    def __init__(
        self,
        split: str = "train",
        num_clips: int = 1024,
        seconds: float = 4.0,
        config: WorldConfig | None = None,
        cache_dir: str | os.PathLike | None = None,
        seed: int = 0,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        self.config = config or WorldConfig()
        num_frames = seconds * self.config.fps
        if seconds <= 0 or num_frames != int(num_frames):
            raise ValueError(f"seconds must be > 0 and a whole number of frames at {self.config.fps} fps, got {seconds}")
        self.split = split
        self.num_clips = num_clips
        self.num_frames = int(num_frames)
        self.seed = seed
        self.cache_dir = Path(cache_dir).expanduser() / f"world-{self.config.fingerprint()}" / split if cache_dir else None

    def __len__(self) -> int:
        return self.num_clips

    def clip_seed(self, index: int) -> int:
        split_index = SPLITS.index(self.split)
        return int(np.random.SeedSequence([self.seed, split_index, index]).generate_state(1)[0])

    def clip(self, index: int) -> Clip:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for {self.num_clips} clips")
        return sample_clip(self.clip_seed(index), split=self.split, config=self.config)

    def __getitem__(self, index: int) -> dict:
        clip = self.clip(index)
        frames, audio = self._rendered(clip)
        return to_sample(frames, audio, clip.prompt, character=clip.character.id, seed=clip.seed)

    def cache_path(self, clip: Clip) -> Path | None:
        return self.cache_dir / f"{clip.seed}-{self.num_frames}.npz" if self.cache_dir else None

    def _rendered(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        """(F, H, W, 3) uint8 frames and (1, S) float32 audio, from the cache when there."""
        path = self.cache_path(clip)
        if path is not None and path.is_file():
            with np.load(path) as cached:
                return cached["frames"], cached["audio"]
        chunk = clip.render(0, self.num_frames)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename: concurrent workers never read a half-written file.
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as handle:
                np.savez(handle, frames=chunk.frames, audio=chunk.audio)
            os.replace(handle.name, path)
        return chunk.frames, chunk.audio
