import os
from pathlib import Path

import pytest

from avgen.codecs import AudioCodec, VideoCodec
from avgen.codecs.presets import TINY_AUDIO, TINY_VIDEO

# Tests never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def narrow_codecs():
    """Builds untrained (video, audio) codecs with the tiny latent shapes (8 channels each) but
    narrow layers, so that encoding and decoding in tests is fast; keyword arguments override
    the video codec's config."""

    def build(**video_config):
        video = VideoCodec(**{**TINY_VIDEO, "base_dim": 8, "decoder_base_dim": 8, **video_config})
        audio = AudioCodec(**{**TINY_AUDIO, "channel_multiples": [1, 1, 2, 2], "decoder_channels": 8})
        return video.eval(), audio.eval()

    return build


OFFICIAL_TINY = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official-tiny"
OFFICIAL_TINY_MISSING = f"the official-tiny fixture is not at {OFFICIAL_TINY} (it lives in shared/ beside the checkout)"
# For modules that read the fixture's files at import or in module-level fixtures.
needs_official_tiny = pytest.mark.skipif(not (OFFICIAL_TINY / "inputs.pt").is_file(), reason=OFFICIAL_TINY_MISSING)


@pytest.fixture(scope="session")
def official_tiny() -> Path:
    """The official samplers' outputs on a tiny random model (shared/fixtures/official-tiny, beside the checkout)."""
    if not (OFFICIAL_TINY / "inputs.pt").is_file():
        pytest.skip(OFFICIAL_TINY_MISSING)
    return OFFICIAL_TINY
