"""Audio and video on one clock: encode a clip to aligned latents, decode latent chunks to AV chunks.

The causal video VAE turns frame 0 alone into latent frame 0 and frames 4k-3 .. 4k into
latent frame k. Audio latents come 8 per latent frame (500 samples each at 16 kHz, 4000 per
4 frames), so to give latent frame k exactly the audio of its frames, the audio track is
preceded by a lead-in of (temporal compression - 1) frames of silence: latent frame 0 then
covers samples [-3000, 1000) of which only frame 0's [0, 1000) are real. Decoding drops the
lead-in again, so AV chunk 0 is one frame with 1000 samples and every later latent frame is
four frames with 4000 samples: picture and sound stay in step chunk by chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from avgen.codecs.audio import AudioCodec
from avgen.codecs.video import VideoCodec


def audio_lead_in(video_codec: VideoCodec, fps: int, sample_rate: int) -> int:
    """Samples of silence before the audio track: the frames latent frame 0 stands for but does not show."""
    return (video_codec.temporal_compression - 1) * sample_rate // fps


def audio_latents_per_frame(video_codec: VideoCodec, audio_codec: AudioCodec, fps: int, sample_rate: int) -> int:
    samples = video_codec.temporal_compression * sample_rate // fps
    if samples % audio_codec.hop_length:
        raise ValueError(
            f"a latent frame spans {samples} samples, not a multiple of the audio codec's hop {audio_codec.hop_length}"
        )
    return samples // audio_codec.hop_length


@torch.no_grad()
def encode_clip(
    video_codec: VideoCodec, audio_codec: AudioCodec, video: torch.Tensor, audio: torch.Tensor, fps: int, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned latents of a clip.

    Args:
        video: (B, 3, 1 + 4k, H, W) in [-1, 1].
        audio: (B, C, (1 + 4k) * sample_rate / fps) in [-1, 1].

    Returns:
        video latents (B, Cv, 1 + k, h, w) and audio latents (B, Ca, 8 (1 + k)).
    """
    frames = video.shape[2]
    expected = frames * sample_rate // fps
    if audio.shape[-1] != expected:
        raise ValueError(f"audio must have {expected} samples for {frames} frames at {fps} fps, got {audio.shape[-1]}")
    padded = torch.nn.functional.pad(audio, (audio_lead_in(video_codec, fps, sample_rate), 0))
    return video_codec.encode_latents(video), audio_codec.encode_latents(padded)


class AVDecoder:
    """Streams latent chunks to AV chunks: frames (F, H, W, 3) uint8 and audio (C, S) float32 per batch item.

    Without an audio codec (a video-only model) the audio of every chunk is None. With `ahead`,
    `submit` hands the frames to a thread of their own and returns at once, so a stream can
    denoise its next chunk while this one's frames decode: on a small CPU model neither side
    gains from a second intra-op thread, so one core each beats two cores taking turns.
    """

    def __init__(self, video_codec: VideoCodec, audio_codec: AudioCodec | None, fps: int, sample_rate: int | None, ahead: bool = False):
        self.video = video_codec.stream()
        self.audio = audio_codec.stream() if audio_codec is not None else None
        self.lead_in = audio_lead_in(video_codec, fps, sample_rate) if audio_codec is not None else 0
        self._dropped = 0
        # One worker: the video decoder's causal cache must see the chunks in order.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="avgen-frames") if ahead else None
        self.seconds = 0.0  # the caller's time in submit() and in waiting for frames: what decoding cost it

    @property
    def ahead(self) -> bool:
        return self._worker is not None

    def decode(self, video_latents: torch.Tensor | None, audio_latents: torch.Tensor | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(B, Cv, f, h, w) + (B, Ca, 8 f) latents -> frames (B, F, H, W, 3) uint8 and audio (B, C, S) float32.

        Video latents None (a given video, shown as it is) decode to frames None.
        """
        return self.submit(video_latents, audio_latents)()

    def submit(self, video_latents: torch.Tensor | None, audio_latents: torch.Tensor | None) -> Callable[[], tuple[np.ndarray | None, np.ndarray | None]]:
        """Start decoding a chunk (the audio here, the frames on the worker if `ahead`); call the result for `decode`'s."""
        began = time.perf_counter()
        if video_latents is None:
            frames = None
        elif self.ahead:
            frames = self._worker.submit(self._frames, video_latents)
        else:
            frames = self._frames(video_latents)
        audio = self._audio(audio_latents)
        self.seconds += time.perf_counter() - began

        def result() -> tuple[np.ndarray | None, np.ndarray | None]:
            waited = time.perf_counter()
            done = frames.result() if isinstance(frames, Future) else frames
            self.seconds += time.perf_counter() - waited
            return done, audio

        return result

    def close(self) -> None:
        """Stop the frames' thread (after the chunk it is on)."""
        if self.ahead:
            self._worker.shutdown()

    @torch.no_grad()  # grad mode is per thread: the worker's starts on
    def _frames(self, video_latents: torch.Tensor) -> np.ndarray:
        video = self.video.decode(video_latents.to(self.video.codec.dtype)).float()
        return ((video.permute(0, 2, 3, 4, 1) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()

    @torch.no_grad()
    def _audio(self, audio_latents: torch.Tensor | None) -> np.ndarray | None:
        if self.audio is None:
            return None
        audio = self.audio.decode(audio_latents.to(self.audio.codec.dtype)).float()
        if self._dropped < self.lead_in:
            cut = min(self.lead_in - self._dropped, audio.shape[-1])
            audio = audio[..., cut:]
            self._dropped += cut
        return audio.clamp(-1.0, 1.0).cpu().numpy()
