"""`avgen eval codecs`: reconstruction quality of the codecs on held-out characters, and their speed.

For each held-out world clip, video and audio go through their codec and back, and the
world metrics are measured again: a codec is only good enough if lips still match the
voice and the character's attributes still read back after the round trip.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from avgen.codecs.audio import AudioCodec
from avgen.codecs.loading import load_codecs
from avgen.codecs.losses import multi_resolution_stft_distance, psnr, psnr_from_mse
from avgen.codecs.precision import cast_codec
from avgen.codecs.video import VideoCodec
from avgen.metrics.attributes import READ_ATTRIBUTES, read_attributes
from avgen.metrics.sync import audio_envelope, measure_sync
from avgen.world.clip import sample_clip
from avgen.world.config import WorldConfig


def frames_to_video(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (1, 3, F, H, W) float in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0


def video_to_frames(video: torch.Tensor) -> np.ndarray:
    """(1, 3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8."""
    return ((video[0].permute(1, 2, 3, 0) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


OUTLINE_STEP = 0.1  # on the [-1, 1] scale: a pixel this much away from a neighbour is on an outline


def outline_pixels(video: torch.Tensor) -> torch.Tensor:
    """(1, 3, F, H, W) in [-1, 1] -> (F, H, W) bool: pixels more than OUTLINE_STEP from their upper or left neighbour.

    The world's shapes and faces are flat colour, so these are their outlines (and the mouth's).
    """
    step = torch.zeros_like(video[0, 0], dtype=torch.bool)  # (F, H, W)
    step[:, 1:] |= (video[0, :, :, 1:] - video[0, :, :, :-1]).abs().amax(0) > OUTLINE_STEP
    step[:, :, 1:] |= (video[0, :, :, :, 1:] - video[0, :, :, :, :-1]).abs().amax(0) > OUTLINE_STEP
    return step


def outline_figures(decoded: torch.Tensor, video: torch.Tensor) -> dict:
    """Where the reconstruction error lies: PSNR on outline pixels and elsewhere, and the outlines' share of it."""
    error = (decoded - video).square().mean(1)[0]  # (F, H, W)
    outline = outline_pixels(video)
    return {
        "psnr_outline": float(psnr_from_mse(error[outline].mean())),
        "psnr_elsewhere": float(psnr_from_mse(error[~outline].mean())),
        "outline_fraction": float(outline.float().mean()),
        "outline_error_share": float(error[outline].sum() / error.sum().clamp_min(1e-12)),
    }


def latent_shift(latents: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean square difference between two codecs' latents of one clip, over the reference latents' variance.

    A generator trained on the reference codec's latents meets this codec's as its training
    latents plus an error of this share of their variance: 0 for the same encoder, 2 for
    unrelated latents of the same spread.
    """
    if latents.shape != reference.shape:
        raise ValueError(
            f"the reference codec's latents are {tuple(reference.shape)} and this codec's {tuple(latents.shape)}: "
            "compare codecs whose latents have the same shape"
        )
    return float((latents - reference).square().mean() / reference.var())


def has_latent_statistics(codec: VideoCodec | AudioCodec) -> bool:
    """Whether `codec` normalises its latents by a measured mean/std (training checkpoints keep them raw)."""
    mean, std = codec.config.latents_mean, codec.config.latents_std
    return bool(mean) and not (all(value == 0 for value in mean) and all(value == 1 for value in std))


def check_comparable(codecs: tuple, reference_codecs: tuple, model: str | Path, reference: str | Path) -> None:
    """Raw latents against normalised ones would measure the normalisation, not how far the encoder moved."""
    for name, codec, reference_codec in zip(("video", "audio"), codecs, reference_codecs):
        if has_latent_statistics(reference_codec) and not has_latent_statistics(codec):
            raise ValueError(
                f"{model}'s {name} codec has no latent mean/std (a training checkpoint?), so its latents cannot be compared "
                f"with {reference}'s: use the codec that train/codecs.py saves at the end of a run"
            )


def folder_megabytes(folder: Path) -> float:
    return round(sum(path.stat().st_size for path in folder.glob("*.safetensors")) / 1e6, 3)


def evaluate_codecs(
    model: str | Path,
    clips: int = 50,
    latent_frames: int = 41,
    seed: int = 0,
    progress: bool = False,
    reference: str | Path | None = None,
    video_decode_dtype: torch.dtype = torch.float32,
) -> dict:
    """Figures over `clips` held-out clips of 1 + 4 * (latent_frames - 1) frames (41: 161 frames, 10 s).

    Clips are encoded in float32 (as the generator's training latents are) and the video decoded
    in `video_decode_dtype` (see avgen.codecs.precision).

    With `reference` (another weights folder) also how far this model's latents moved from the
    reference codecs' (`latent_shift`): whether a generator trained on those still fits.
    """
    video_codec, audio_codec = load_codecs(model)
    video_decoder = video_codec
    if video_decode_dtype != torch.float32:
        video_decoder = load_codecs(model)[0]
        cast_codec(video_decoder, video_decode_dtype)
    reference_codecs = None
    if reference is not None:
        reference_codecs = load_codecs(reference)
        check_comparable((video_codec, audio_codec), reference_codecs, model, reference)
    config = WorldConfig()
    num_frames = 1 + video_codec.temporal_compression * (latent_frames - 1)
    rows = []
    iterator = range(seed, seed + clips)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="evaluating codecs", unit="clip")
    for clip_seed in iterator:
        clip = sample_clip(clip_seed, split="held-out", config=config)
        chunk = clip.render(0, num_frames)
        video = frames_to_video(chunk.frames)
        audio = torch.from_numpy(chunk.audio)[None]  # (1, 1, S)
        with torch.no_grad():
            video_latents, audio_latents = video_codec.encode_latents(video), audio_codec.encode_latents(audio)
            video_out = video_decoder.decode_latents(video_latents.to(video_decode_dtype)).float()
            audio_out = audio_codec.decode_latents(audio_latents)
            shifts = {}
            if reference_codecs is not None:
                reference_video, reference_audio = reference_codecs
                shifts["video_latent_shift"] = latent_shift(video_latents, reference_video.encode_latents(video))
                shifts["audio_latent_shift"] = latent_shift(audio_latents, reference_audio.encode_latents(audio))
        frames_out = video_to_frames(video_out)
        samples_out = audio_out[0].numpy()
        truth = {name: getattr(clip.character, name) for name in READ_ATTRIBUTES}
        reading = read_attributes(frames_out).as_dict()
        original_envelope = audio_envelope(chunk.audio, config.sample_rate, config.fps, num_frames)
        decoded_envelope = audio_envelope(samples_out, config.sample_rate, config.fps, num_frames)
        rows.append(
            {
                "psnr": float(psnr(video_out, video)[0]),
                **outline_figures(video_out, video),
                "sync_video_roundtrip": measure_sync(frames_out, chunk.audio, config.fps, config.sample_rate).offset,
                "sync_both_roundtrip": measure_sync(frames_out, samples_out, config.fps, config.sample_rate).offset,
                "attributes": {name: reading[name] == truth[name] for name in READ_ATTRIBUTES},
                "envelope_correlation": float(np.corrcoef(original_envelope, decoded_envelope)[0, 1]),
                "stft_distance": float(multi_resolution_stft_distance(audio_out, audio)),
                **shifts,
            }
        )
    model = Path(model)
    figures = {
        "clips": clips,
        "frames_per_clip": num_frames,
        "split": "held-out",
        "video_psnr_db_mean": round(float(np.mean([r["psnr"] for r in rows])), 3),
        "video_psnr_db_min": round(float(np.min([r["psnr"] for r in rows])), 3),
        "video_psnr_db_outline_mean": round(float(np.mean([r["psnr_outline"] for r in rows])), 3),
        "video_psnr_db_elsewhere_mean": round(float(np.mean([r["psnr_elsewhere"] for r in rows])), 3),
        "video_outline_pixel_fraction": round(float(np.mean([r["outline_fraction"] for r in rows])), 4),
        "video_outline_error_share": round(float(np.mean([r["outline_error_share"] for r in rows])), 4),
        "sync_offset_zero_video_roundtrip": float(np.mean([r["sync_video_roundtrip"] == 0 for r in rows])),
        "attribute_readback_video_roundtrip": float(np.mean([all(r["attributes"].values()) for r in rows])),
        "attribute_readback_by_name": {name: float(np.mean([r["attributes"][name] for r in rows])) for name in READ_ATTRIBUTES},
        "audio_envelope_correlation_mean": round(float(np.mean([r["envelope_correlation"] for r in rows])), 4),
        "audio_envelope_correlation_min": round(float(np.min([r["envelope_correlation"] for r in rows])), 4),
        "audio_multi_resolution_stft_distance": round(float(np.mean([r["stft_distance"] for r in rows])), 4),
        "sync_offset_zero_both_roundtrip": float(np.mean([r["sync_both_roundtrip"] == 0 for r in rows])),
        "video_decode_dtype": str(video_decode_dtype).removeprefix("torch."),
        "streaming_decode_realtime_factor_one_thread": round(streaming_speed(video_decoder, audio_codec, config), 2),
        "video_codec_megabytes": folder_megabytes(model / "vae"),
        "audio_codec_megabytes": folder_megabytes(model / "audio_codec"),
    }
    if reference_codecs is not None:
        figures["reference"] = str(reference)
        for name in ("video_latent_shift", "audio_latent_shift"):
            figures[name] = round(float(np.mean([r[name] for r in rows])), 5)
    return figures


def streaming_speed(video_codec: VideoCodec, audio_codec: AudioCodec, config: WorldConfig, seconds: float = 10.0) -> float:
    """Seconds of audio+video decoded per second of wall time, chunk by chunk (one latent frame), on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        latent_frames = int(seconds * config.fps / video_codec.temporal_compression)
        hop = audio_codec.hop_length
        audio_per_latent = video_codec.temporal_compression * config.sample_rate // config.fps // hop  # 8
        size = config.height // video_codec.spatial_compression
        video_latents = torch.randn(1, video_codec.config.z_dim, latent_frames, size, size, dtype=video_codec.dtype)
        audio_latents = torch.randn(1, audio_codec.config.decoder_input_channels, latent_frames * audio_per_latent)
        video_stream, audio_stream = video_codec.stream(), audio_codec.stream()
        began = time.perf_counter()
        for index in range(latent_frames):
            video_stream.decode(video_latents[:, :, index : index + 1])
            audio_stream.decode(audio_latents[..., index * audio_per_latent : (index + 1) * audio_per_latent])
        elapsed = time.perf_counter() - began
    finally:
        torch.set_num_threads(threads)
    return seconds / elapsed
