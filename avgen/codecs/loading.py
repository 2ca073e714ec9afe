"""The two codecs of a weights folder (its vae/ and audio_codec/), with an error that says how to get them."""

from __future__ import annotations

from pathlib import Path

from avgen.codecs.audio import AudioCodec
from avgen.codecs.video import VideoCodec

SUBFOLDERS = ("vae", "audio_codec")
# The submodules whose weights decide a codec's latents (quant_conv: the video VAE's projection
# to the posterior); everything else in either codec is decoder.
ENCODER_MODULES = ("encoder", "quant_conv")


def missing_codec(folder: str | Path) -> str | None:
    """The first codec subfolder that `folder` lacks, or None."""
    for name in SUBFOLDERS:
        if not (Path(folder) / name / "diffusion_pytorch_model.safetensors").is_file():
            return name
    return None


def load_codecs(folder: str | Path) -> tuple[VideoCodec, AudioCodec]:
    """(video codec, audio codec) in eval mode."""
    folder = Path(folder)
    missing = missing_codec(folder)
    if missing is not None:
        raise ValueError(f"{str(folder / missing)!r} holds no codec; train one with `python train/codecs.py`")
    return VideoCodec.from_pretrained(folder / "vae").eval(), AudioCodec.from_pretrained(folder / "audio_codec").eval()
