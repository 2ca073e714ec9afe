"""A training checkpoint + the codecs -> a pipeline folder that both pipelines load."""

from __future__ import annotations

from pathlib import Path

from avgen.codecs.loading import load_codecs
from avgen.scheduler import FlowMatchShortcutScheduler
from avgen.training.config import ConfigError
from avgen.training.generator import Generator
from avgen.training.latents import require_codecs
from avgen.training.trainer import resolve_weights


def export_pipeline(
    weights: str | Path,
    codecs: str | Path,
    out: str | Path,
    use_ema: bool = True,
    window_attention: str = "joint",
    dub_window: int | None = None,
    guidance_scale: float = 1.0,
    guidance_from_level: float = 0.0,
    guidance_area_below_level: float = 0.0,
    audio_guidance_scale: float = 1.0,
    audio_guidance_area: float = 1.0,
) -> Path:
    """Write `out` in diffusers layout (model_index.json + transformer/, text_encoder/, vae/, audio_codec/, scheduler/).

    Args:
        weights: a run folder (its newest checkpoint is taken) or a checkpoint folder.
        use_ema: export the EMA weights when the checkpoint has them.
        window_attention: the rolling window's attention the weights were trained with (stage 4's
            `window_attention`), which the pipeline then samples with.
        dub_window: the window while voicing a given video (None: the generation's).
        guidance_scale, audio_guidance_scale: the folder's default guidance by the prompt and of
            the picture by the voice (sampler settings, chosen on validation seeds; 1: off).
        guidance_from_level: the noise level from which the prompt guides (see `Denoiser`; 0:
            every level).
        guidance_area_below_level: the share of each frame's latent positions still guided by the
            prompt below that level, where its guidance is largest (see `Denoiser`; 0: none).
        audio_guidance_area: the share of each frame's latent positions the voice's guidance
            pushes, where it is largest (see `Denoiser`; 1: every position).
    """
    from avgen.pipelines.rolling_forcing import RollingForcingPipeline

    checkpoint = resolve_weights(weights)
    source = checkpoint / "ema" if use_ema and (checkpoint / "ema").is_dir() else checkpoint
    generator = Generator.from_folder(source)
    vae, audio_codec = load_codecs(require_codecs(codecs))
    if vae.config.z_dim != generator.transformer.config.video_in_channels:
        raise ConfigError(
            f"the codecs in {str(codecs)!r} give {vae.config.z_dim} latent channels, the checkpoint's model takes "
            f"{generator.transformer.config.video_in_channels}: export with the codecs it was trained on"
        )
    pipeline = RollingForcingPipeline(
        transformer=generator.transformer.eval(),
        vae=vae,
        audio_codec=audio_codec,
        text_encoder=generator.text_encoder.eval(),
        scheduler=FlowMatchShortcutScheduler(),
        window_attention=window_attention,
        dub_window=dub_window,
        guidance_scale=guidance_scale,
        guidance_from_level=guidance_from_level,
        guidance_area_below_level=guidance_area_below_level,
        audio_guidance_scale=audio_guidance_scale,
        audio_guidance_area=audio_guidance_area,
    )
    pipeline.save_pretrained(out, safe_serialization=True)
    return Path(out)
