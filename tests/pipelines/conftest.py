import pytest
import torch

from avgen import CausalAVTransformer, FlowMatchShortcutScheduler, MutualForcingPipeline, RollingForcingPipeline, WorldTextEncoder

PROMPT = "A red round face with glasses talks in a deep voice on a navy background."


@pytest.fixture(scope="session")
def components(narrow_codecs):
    """Random components with the shipped model's shapes but fewer layers and channels (fast tests),
    with fusion and step embedding switched on."""
    torch.manual_seed(0)
    transformer = CausalAVTransformer.from_preset("tiny", num_layers=1).eval()
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "fusion_blocks" in name or "step_embedder" in name:
                parameter.add_(0.02 * torch.randn_like(parameter))
    vae, audio_codec = narrow_codecs()
    return dict(
        transformer=transformer,
        vae=vae,
        audio_codec=audio_codec,
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
