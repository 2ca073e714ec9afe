"""Chunk files for Gradio's streaming video: H.264 video with lossless FLAC audio, in mp4.

Gradio copies each chunk's H.264 into its MPEG-TS segments but decodes the chunk's audio and
re-encodes the whole stream with one AAC encoder, so a chunk's audio must decode to exactly
its own samples. AAC in the chunk would not: every AAC file carries the encoder's priming and
pads its last frame, about 1000 extra samples per chunk at 16 kHz (1400 in MPEG-TS), which
Gradio plays as a gap and answers by holding the picture. FLAC decodes sample-exact.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from avgen.media import VIDEO_CRF, MediaError, ffmpeg_exe


def write_segment(path: Path, frames: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int) -> Path:
    """Write frames (F, H, W, 3) uint8 and audio (C, S) float32 in [-1, 1] of the same span as an mp4 chunk."""
    _, H, W, _ = frames.shape
    channels = audio.shape[0]
    with tempfile.TemporaryDirectory(prefix="avgen-segment-") as scratch:
        audio_file = Path(scratch) / "audio.f32"
        np.ascontiguousarray(audio.T, dtype="<f4").tofile(audio_file)  # interleaved (S, C)
        # fmt: off
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(fps), "-i", "pipe:0",
            "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", str(audio_file),
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(VIDEO_CRF), "-pix_fmt", "yuv420p",
            "-c:a", "flac", "-f", "mp4",
        ]
        # fmt: on
        partial = path.with_name(f".{path.name}.partial")  # Gradio never sees a half-written chunk
        result = subprocess.run(command + [str(partial)], input=frames.tobytes(), capture_output=True)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            reason = result.stderr.decode(errors="replace").strip().splitlines()
            raise MediaError(f"ffmpeg could not write segment {str(path)!r}: {reason[-1] if reason else 'unknown error'}")
        os.replace(partial, path)
    return path
