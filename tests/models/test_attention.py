import importlib.util

import pytest
import torch

from avgen.models import KVCache, Visibility, attend

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="fused CUDA kernels: this machine has no CUDA GPU")


def teacher_forcing_visibility(num_chunks: int, tokens: int) -> Visibility:
    """[clean context | noisy chunks] over `num_chunks` chunks of `tokens` tokens."""
    chunks = torch.arange(num_chunks).repeat(2)
    groups = torch.cat([torch.zeros(num_chunks, dtype=torch.long), torch.ones(num_chunks, dtype=torch.long)])
    return Visibility(chunks, groups, tokens, chunks, groups, tokens)


def qkv(length: int, device="cpu", dtype=torch.float32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, length, 3, 16, generator=generator).to(device, dtype) for _ in range(3)]


def test_teacher_forcing_visibility_rules():
    mask = teacher_forcing_visibility(3, 1).chunk_mask()
    clean, noisy = range(3), range(3, 6)
    # clean chunk i sees clean chunks <= i and nothing noisy
    assert [[bool(mask[i, j]) for j in range(6)] for i in clean] == [
        [True, False, False, False, False, False],
        [True, True, False, False, False, False],
        [True, True, True, False, False, False],
    ]
    # noisy chunk i sees clean chunks < i and itself
    assert [[bool(mask[i, j]) for j in range(6)] for i in noisy] == [
        [False, False, False, True, False, False],
        [True, False, False, False, True, False],
        [True, True, False, False, False, True],
    ]


def test_sdpa_and_flex_agree_on_cpu():
    visibility = teacher_forcing_visibility(4, 5)
    q, k, v = qkv(40)
    sdpa = attend(q, k, v, visibility, "sdpa")
    flex = attend(q, k, v, visibility, "flex")
    assert (sdpa - flex).abs().max() <= 1e-5
    assert (attend(q, k, v, None, "sdpa") - attend(q, k, v, None, "flex")).abs().max() <= 1e-5


def test_whole_model_agrees_across_sdpa_and_flex(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    clean_video, clean_audio, _ = make_latents(micro, 3, seed=5)
    with torch.no_grad():
        outputs = {}
        for backend in ("sdpa", "flex"):
            micro.set_attention_backend(backend)
            outputs[backend] = micro(video, audio, 0.5, 0.5, encoder_hidden_states=text, context_video=clean_video, context_audio=clean_audio)
    assert (outputs["sdpa"].video - outputs["flex"].video).abs().max() <= 1e-5
    assert (outputs["sdpa"].audio - outputs["flex"].audio).abs().max() <= 1e-5


@pytest.mark.parametrize("backend", ["flash", "xformers"])
def test_cuda_kernels_refuse_cpu_tensors_with_advice(backend):
    q, k, v = qkv(8)
    with pytest.raises(ValueError, match="runs only on CUDA tensors; use backend='sdpa'"):
        attend(q, k, v, None, backend)


@needs_cuda
@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed (pip install 'avgen[gpu]')")
def test_flash_attention_matches_sdpa_on_cuda():
    q, k, v = qkv(64, "cuda", torch.bfloat16)
    assert (attend(q, k, v, None, "flash").float() - attend(q, k, v, None, "sdpa").float()).abs().max() <= 2e-2


@needs_cuda
@pytest.mark.skipif(importlib.util.find_spec("xformers") is None, reason="xformers is not installed (pip install 'avgen[gpu]')")
def test_xformers_matches_sdpa_on_cuda():
    visibility = teacher_forcing_visibility(4, 16)
    q, k, v = qkv(128, "cuda", torch.float16)
    assert (attend(q, k, v, visibility, "xformers").float() - attend(q, k, v, visibility, "sdpa").float()).abs().max() <= 1e-2


@needs_cuda
def test_compiled_flex_matches_sdpa_on_cuda():
    visibility = teacher_forcing_visibility(4, 128)
    q, k, v = qkv(1024, "cuda")
    assert (attend(q, k, v, visibility, "flex") - attend(q, k, v, visibility, "sdpa")).abs().max() <= 1e-4


@needs_cuda
def test_bf16_incremental_forward_on_cuda(micro, make_latents):
    model = micro.to("cuda", torch.bfloat16)
    video, audio, text = (x.to("cuda", torch.bfloat16) for x in make_latents(micro, 2))
    cache = KVCache(sink=1, window=2)
    with torch.no_grad():
        out = model.forward_chunks(cache, video[:, :, :2], audio[:, :, :8], 0.5, 0.5, encoder_hidden_states=text, write=True)
    assert out.video.dtype == torch.bfloat16 and torch.isfinite(out.video.float()).all()
