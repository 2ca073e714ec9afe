"""The clip every training dataset yields, the world's and footage alike, on the causal video VAE's clock.

A clip of k latent frames has 1 + tc (k - 1) pixel frames (tc: the VAE's temporal compression),
because the causal VAE's first latent frame stands for one frame and every later one for tc
(avgen/codecs/av.py). Its audio covers the same frames: S = F * sample_rate / fps samples.
"""

from __future__ import annotations

import numpy as np


def pixel_frames(latent_frames: int, temporal_compression: int) -> int:
    """Pixel frames of a clip of `latent_frames` latent frames (>= 1)."""
    return 1 + temporal_compression * (latent_frames - 1)


def to_sample(frames: np.ndarray, audio: np.ndarray | None, prompt: str, **extra) -> dict:
    """A training sample, as the training stages read it.

    Args:
        frames: (F, H, W, 3) uint8 RGB.
        audio: (C, S) float32 in [-1, 1]; None for video-only data.
        extra: further entries, kept as given (e.g. the world's character id, a footage file name).

    Returns:
        dict with video (3, F, H, W) float32 in [-1, 1], audio (C, S) float32 (left out when
        None, so that batches of video-only data collate), prompt, and `extra`.
    """
    import torch  # here: scanning footage (`avgen footage check`) runs without torch

    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0  # (3, F, H, W)
    sample = {"video": video, "prompt": prompt, **extra}
    if audio is not None:
        sample["audio"] = torch.from_numpy(audio)
    return sample
