"""Codec sizes: `tiny` is what avgen-tiny ships (64x64 world video, 16 kHz audio)."""

from __future__ import annotations

from avgen.codecs.audio import AudioCodec
from avgen.codecs.video import VideoCodec

TINY_VIDEO = dict(
    base_dim=16,
    # Streaming decode must beat real time on one CPU core. With avgen/codecs/wan_kernels.py a
    # 16-wide decoder takes 74 ms per latent frame (0.25 s) on one thread, what an 8-wide one
    # took with the stock kernels; trained the same way on avgen-tiny's encoder, it decoded
    # held-out clips 1 dB better than the 8-wide one.
    decoder_base_dim=16,
    z_dim=8,
    dim_mult=[1, 2, 4, 4],  # three downsamplings: 8x spatial
    num_res_blocks=1,
    temperal_downsample=[False, True, True],  # 4x temporal
    # Wan2.2-style shortcuts around every resampling: on a 64x64 batch overfit, 21.9 dB after
    # 80 steps against 18.7 dB without (lr 3e-4).
    is_residual=True,
    latents_mean=[0.0] * 8,
    latents_std=[1.0] * 8,
)

TINY_AUDIO = dict(
    encoder_hidden_size=16,  # two halves: 8 latent channels (mean, scale)
    downsampling_ratios=[2, 5, 5, 10],  # 500 samples per latent: 32 latents/s at 16 kHz
    channel_multiples=[1, 2, 4, 8],
    decoder_channels=32,
    decoder_input_channels=8,
    audio_channels=1,
    sampling_rate=16000,
)


def tiny_video_codec(latent_channels: int = TINY_VIDEO["z_dim"]) -> VideoCodec:
    """The tiny video codec, untrained; `latent_channels` sets how much each 8x8x4 patch of video keeps."""
    return VideoCodec(**{**TINY_VIDEO, "z_dim": latent_channels, "latents_mean": [0.0] * latent_channels, "latents_std": [1.0] * latent_channels})


def tiny_audio_codec() -> AudioCodec:
    return AudioCodec(**TINY_AUDIO)
