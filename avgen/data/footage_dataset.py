"""Footage clips as a torch Dataset, in the sample format of the world's dataset (avgen/data/sample.py)."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from avgen.data.footage import FootageIndex, FootageSpec, decode_clip, scan_footage
from avgen.data.sample import to_sample


class FootageDataset(Dataset):
    """The clips of a scanned footage folder, decoded when asked for (see avgen/data/footage.py).

    Items are dicts, as WorldDataset's:
        video: (3, F, H, W) float32 in [-1, 1], F = spec.clip_frames at spec.fps, spec.height x spec.width
        audio: (C, S) float32 in [-1, 1], S = F * sample_rate / fps (no entry for a video-only spec)
        prompt: str, the file's caption
        file: str, the file's path relative to the folder
        start_seconds: float, where the clip starts in the file

    A file that decodes to less than its header promised raises avgen.media.MediaError naming
    it; scanning cannot see that without decoding every file.
    """

    def __init__(self, index: FootageIndex):
        if not index.clips:
            raise ValueError(
                f"footage folder {str(index.folder)!r} has no usable clip ({len(index.skipped)} files skipped); "
                f"`avgen footage check {index.folder}` says why"
            )
        self.index = index

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, spec: FootageSpec | None = None) -> FootageDataset:
        return cls(scan_footage(folder, spec))

    @property
    def spec(self) -> FootageSpec:
        return self.index.spec

    def __len__(self) -> int:
        return len(self.index.clips)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        clip = self.index.clips[index]
        frames, audio = decode_clip(self.index.folder, clip, self.spec)
        return to_sample(frames, audio, clip.file.caption, file=clip.file.path, start_seconds=clip.start_seconds)
