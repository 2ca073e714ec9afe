"""`avgen bench model`: speed, memory and exactness of chunk-by-chunk generation at a preset's size."""

from __future__ import annotations

import resource
import statistics
import time

import torch

from avgen.models.kv_cache import KVCache
from avgen.models.presets import BENCH_LATENT_SIZES, BENCH_TEXT_TOKENS, preset_config
from avgen.models.transformer import CausalAVTransformer


def benchmark_model(
    preset: str,
    chunks: int,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    sink: int = 1,
    window: int = 4,
    backend: str = "sdpa",
    exactness_chunks: int = 4,
    progress: bool = False,
) -> dict:
    """Run `chunks` chunks (one forward each, written to a sink + window cache) and measure.

    Returns ms per chunk (median over all chunks after 3 warm-up ones), peak memory, cache
    bytes after 10, 100 and `chunks` chunks, and the largest difference between incremental
    and full block-causal outputs over `exactness_chunks` chunks.
    """
    config = preset_config(preset)
    torch.manual_seed(0)
    # nn.Module.to casts every weight; ModelMixin.to would warn about its fp32-only modules,
    # which compute in fp32 whatever their weights' dtype.
    model = torch.nn.Module.to(CausalAVTransformer(**config), device=device, dtype=dtype).eval()
    model.set_attention_backend(backend)
    height, width = BENCH_LATENT_SIZES[preset]
    cf, apf = config["chunk_frames"], config["audio_latents_per_frame"]

    def sample(num_chunks: int) -> tuple[torch.Tensor, torch.Tensor]:
        video = torch.randn(1, config["video_in_channels"], num_chunks * cf, height, width, device=device, dtype=dtype)
        audio = torch.randn(1, config["audio_in_channels"], num_chunks * cf * apf, device=device, dtype=dtype)
        return video, audio

    text = torch.randn(1, BENCH_TEXT_TOKENS[preset], config["text_dim"], device=device, dtype=dtype)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cache = KVCache(sink=sink, window=window)
    timings, cache_bytes = [], {}
    video, audio = sample(1)
    with torch.no_grad():
        for index in _progress(range(chunks), progress):
            _synchronize(device)
            start = time.perf_counter()
            model.forward_chunks(cache, video, audio, 0.0, 0.0, encoder_hidden_states=text, write=True)
            _synchronize(device)
            timings.append((time.perf_counter() - start) * 1000)
            if index + 1 in (10, 100, chunks):
                cache_bytes[str(index + 1)] = cache.nbytes()
        exactness = _exactness(model, sample(exactness_chunks), text)
    measured = timings[3:] or timings
    return {
        "preset": preset,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "backend": backend,
        "chunks": chunks,
        "chunk_latent_frames": cf,
        "latent_size": [height, width],
        "sink": sink,
        "window": window,
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "ms_per_chunk_median": round(statistics.median(measured), 3),
        "ms_per_chunk_p90": round(sorted(measured)[int(0.9 * (len(measured) - 1))], 3),
        "peak_memory_bytes": _peak_memory(device),
        "cache_bytes": cache_bytes,
        "max_abs_diff_incremental_vs_full": exactness,
    }


def _exactness(model: CausalAVTransformer, latents: tuple[torch.Tensor, torch.Tensor], text: torch.Tensor) -> float:
    video, audio = latents
    num_chunks = video.shape[2] // model.config.chunk_frames
    timesteps = torch.rand(1, num_chunks, device=video.device)
    full = model(video, audio, timesteps, timesteps, encoder_hidden_states=text)
    cache = KVCache(sink=num_chunks, window=0)
    cf, apf = model.config.chunk_frames, model.config.audio_latents_per_frame
    worst = 0.0
    for c in range(num_chunks):
        out = model.forward_chunks(
            cache, video[:, :, c * cf : (c + 1) * cf], audio[:, :, c * cf * apf : (c + 1) * cf * apf],
            timesteps[:, c : c + 1], timesteps[:, c : c + 1], encoder_hidden_states=text, write=True,
        )  # fmt: skip
        worst = max(
            worst,
            float((out.video - full.video[:, :, c * cf : (c + 1) * cf]).abs().max()),
            float((out.audio - full.audio[:, :, c * cf * apf : (c + 1) * cf * apf]).abs().max()),
        )
    return worst


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory(device: str) -> int:
    """Peak GPU memory allocated, or on CPU the process's peak resident memory, in bytes."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _progress(items: range, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="chunks", unit="chunk")
