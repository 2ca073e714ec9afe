"""Chunk files for Gradio's streaming video: H.264 video with lossless FLAC audio, in mp4.

Gradio copies each chunk's H.264 into its MPEG-TS segments but decodes the chunk's audio and
re-encodes the whole stream with one AAC encoder, so a chunk's audio must decode to exactly
its own samples. AAC in the chunk would not: every AAC file carries the encoder's priming and
pads its last frame, about 1000 extra samples per chunk at 16 kHz (1400 in MPEG-TS), which
Gradio plays as a gap and answers by holding the picture. FLAC decodes sample-exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avgen.media import write_mp4


def write_segment(path: Path, frames: np.ndarray, audio: np.ndarray | None, fps: int, sample_rate: int | None) -> Path:
    """Write frames (F, H, W, 3) uint8 and audio (C, S) float32 in [-1, 1] of the same span (or None:
    video only) as an mp4 chunk."""
    return write_mp4(path, frames, audio, fps, sample_rate, audio_codec="flac")
