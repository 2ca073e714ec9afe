import pytest
import torch

from avgen.models import CausalAVTransformer

MICRO = dict(
    video_in_channels=4,
    video_patch_size=(1, 2, 2),
    video_dim=24,
    video_num_heads=2,
    video_ffn_dim=48,
    audio_in_channels=3,
    audio_patch_size=2,
    audio_dim=16,
    audio_num_heads=2,
    audio_ffn_dim=32,
    num_layers=2,
    text_dim=16,
    freq_dim=32,
    chunk_frames=2,
    audio_latents_per_frame=4,
    rope_max_seq_len=64,
)


def perturb(model: CausalAVTransformer, std: float = 0.05) -> CausalAVTransformer:
    """Give the zero-initialised parts (fusion outputs, step embedders) weights, so tests exercise them."""
    generator = torch.Generator().manual_seed(1)
    modules = [model.video_step_embedder, model.audio_step_embedder]
    if model.fusion_blocks is not None:
        modules.append(model.fusion_blocks)
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
    return model


@pytest.fixture
def micro_config() -> dict:
    """A two-layer model with every feature on: video + audio patches, 2-frame chunks, fusion."""
    return dict(MICRO)


@pytest.fixture
def micro():
    torch.manual_seed(0)
    return perturb(CausalAVTransformer(**MICRO)).eval()


@pytest.fixture
def make_latents():
    return latents


@pytest.fixture
def perturbed():
    return perturb


def latents(model: CausalAVTransformer, num_chunks: int, batch: int = 2, seed: int = 0, size: tuple[int, int] = (4, 6)):
    """Random video (B, C, F, H, W), audio (B, C, T) and text (B, 5, text_dim) for `num_chunks` chunks."""
    cfg = model.config
    generator = torch.Generator().manual_seed(seed)
    frames = num_chunks * cfg.chunk_frames
    video = torch.randn(batch, cfg.video_in_channels, frames, *size, generator=generator)
    audio = torch.randn(batch, cfg.audio_in_channels, frames * cfg.audio_latents_per_frame, generator=generator)
    text = torch.randn(batch, 5, cfg.text_dim, generator=generator)
    return video, audio, text
