"""Named model sizes: `CausalAVTransformer.from_preset(name)`.

tiny      the shipped CPU model's size and the one tests run (fast on a laptop CPU).
wan-1.3b  the video tower of Wan2.1-T2V-1.3B (30 layers, dim 1536, 12 heads, FFN 8960,
          umT5 text of 4096 channels, 16 latent channels) plus an audio tower of half its
          width and fusion in every block; chunks of 3 latent frames as in Self-Forcing.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "tiny": dict(
        video_in_channels=8,
        video_patch_size=(1, 2, 2),
        video_dim=128,
        video_num_heads=4,
        video_ffn_dim=384,
        audio_in_channels=8,
        audio_patch_size=1,
        audio_dim=96,
        audio_num_heads=4,
        audio_ffn_dim=288,
        num_layers=4,
        text_dim=64,
        freq_dim=64,
        chunk_frames=1,
        audio_latents_per_frame=8,
        rope_max_seq_len=256,
    ),
    "wan-1.3b": dict(
        video_in_channels=16,
        video_patch_size=(1, 2, 2),
        video_dim=1536,
        video_num_heads=12,
        video_ffn_dim=8960,
        audio_in_channels=16,
        audio_patch_size=1,
        audio_dim=768,
        audio_num_heads=6,
        audio_ffn_dim=3072,
        num_layers=30,
        text_dim=4096,
        freq_dim=256,
        chunk_frames=3,
        audio_latents_per_frame=8,
        rope_max_seq_len=1024,
    ),
}


# Latent (height, width) each preset is benchmarked at: 64x64 world frames and Wan's 480x832, both /8.
BENCH_LATENT_SIZES = {"tiny": (8, 8), "wan-1.3b": (60, 104)}
BENCH_TEXT_TOKENS = {"tiny": 16, "wan-1.3b": 512}


def preset_config(name: str) -> dict:
    """Config of a named preset; a ValueError lists the names when it is unknown."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}: choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])
