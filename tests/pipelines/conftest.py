import pytest
import torch

from avgen import CausalAVTransformer, FlowMatchShortcutScheduler, MutualForcingPipeline, RollingForcingPipeline, WorldTextEncoder
from avgen.codecs import AudioCodec, VideoCodec
from avgen.codecs.presets import TINY_AUDIO, TINY_VIDEO

PROMPT = "A red round face with glasses talks in a deep voice on a navy background."


@pytest.fixture(scope="session")
def components():
    """Random components with the shipped model's shapes but fewer layers and channels (fast tests),
    with fusion and step embedding switched on."""
    torch.manual_seed(0)
    transformer = CausalAVTransformer.from_preset("tiny", num_layers=1).eval()
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "fusion_blocks" in name or "step_embedder" in name:
                parameter.add_(0.02 * torch.randn_like(parameter))
    return dict(
        transformer=transformer,
        vae=VideoCodec(**{**TINY_VIDEO, "base_dim": 8, "decoder_base_dim": 8}).eval(),
        audio_codec=AudioCodec(**{**TINY_AUDIO, "channel_multiples": [1, 1, 2, 2], "decoder_channels": 8}).eval(),
        text_encoder=WorldTextEncoder().eval(),
        scheduler=FlowMatchShortcutScheduler(),
    )


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def rolling(components):
    return quiet(RollingForcingPipeline(**components))


@pytest.fixture
def mutual(components):
    return quiet(MutualForcingPipeline(**components))


@pytest.fixture
def prompt():
    return PROMPT
