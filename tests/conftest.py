import os

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
