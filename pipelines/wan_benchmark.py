"""Benchmark: a converted Wan2.1-T2V-1.3B-sized model streaming through RollingForcingPipeline.

    python -m avgen.pipelines.wan_benchmark --device cuda --dtype bf16 [--vae-dtype bf16] [--backends sdpa,flex,flash] [--modes eager,compiled,cudagraphs] [--json]
    python -m avgen.pipelines.wan_benchmark --size tiny --device cpu     # the same path at a CPU size
    python -m avgen.pipelines.wan_benchmark --latent                     # the transformer alone (no VAE decode)

Random weights of the real shapes (what `avgen convert` builds: a video-only transformer of
30 blocks of 1536 channels, Wan2.1's VAE) under the Rolling Forcing recipe at 832x480: the
weights decide nothing about speed. For each attention backend and each way of running the
transformer (eager; its stages compiled by torch.compile; compiled with CUDA graphs, mode
"reduce-overhead") it streams `chunks` chunks with the VAE's streaming decode and reports time
to first frame (of a second stream, after one that paid for start-up and compilation: the
first's is `cold_first_frame_s`), steady-state frames per second (chunks after the window is
full, decode included) and peak GPU memory, and how far each way's output lies from eager's on
the same seed (the largest difference of a pixel, in 0-255 levels; of a latent with --latent).
On one H200 the README's Speed section has the figures. Anchors from
the papers: Rolling Forcing 15.79 FPS, Self-Forcing 17.0 FPS (H100), LongLive 20.7 FPS (H100).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

SIZES = {
    # (transformer config changes, VAE base_dim, height, width, text tokens)
    "wan-1.3b": ({}, 96, 480, 832, 512),
    "tiny": ({"video_dim": 64, "video_num_heads": 2, "video_ffn_dim": 128, "num_layers": 2, "text_dim": 32}, 8, 64, 64, 16),
}
WAN = dict(video_in_channels=16, video_patch_size=(1, 2, 2), video_dim=1536, video_num_heads=12, video_ffn_dim=8960,
           num_layers=30, text_dim=4096, freq_dim=256, fusion=False, chunk_frames=3, rope_max_seq_len=1024,
           modalities=("video",), step_conditioning=False)  # fmt: skip
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# How the transformer runs: torch.compile options of its stages, None for eager.
MODES = {"eager": None, "compiled": {}, "cudagraphs": {"mode": "reduce-overhead"}}


def wan_pipeline(size: str, device: str, dtype: torch.dtype, vae_dtype: torch.dtype = torch.float32):
    """A RollingForcingPipeline with random weights of `size`, configured as `avgen convert --recipe rolling-forcing`."""
    from avgen.codecs.video import VideoCodec
    from avgen.convert.recipes import recipe
    from avgen.models.transformer import CausalAVTransformer
    from avgen.pipelines.rolling_forcing import RollingForcingPipeline
    from avgen.scheduler import FlowMatchShortcutScheduler

    changes, base_dim, height, width, _ = SIZES[size]
    settings = recipe("rolling-forcing")
    torch.manual_seed(0)
    with torch.device(device):
        transformer = CausalAVTransformer(**{**WAN, **changes}).eval()
        vae = VideoCodec(base_dim=base_dim, z_dim=16).eval()
    pipe = RollingForcingPipeline(
        transformer=transformer, vae=vae, text_encoder=None,
        scheduler=FlowMatchShortcutScheduler(**settings.scheduler_config()), height=height, width=width,
        **settings.sampling_defaults(),
    )
    torch.nn.Module.to(transformer, dtype=dtype)
    torch.nn.Module.to(vae, dtype=vae_dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def benchmark_backend(
    pipe, backend: str, mode: str, chunks: int, device: str, text_tokens: int, output_type: str
) -> tuple[dict, torch.Tensor]:
    """Time to first frame, steady frames per second and peak memory of a stream, and its output:
    (chunks * F, H, W, 3) frames, or (C, chunks * f, h, w) latents.

    A first, shorter stream (its time to first frame reported as `cold_first_frame_s`) pays
    for what a server pays once: CUDA's start-up, kernel choices and compilation of every
    window size; the figures are the second stream's.
    """
    from avgen.models.compilation import eager_stages, is_compiled

    pipe.transformer.set_attention_backend(backend)
    eager_stages(pipe.transformer)
    # Graphs of an earlier mode would count against torch.compile's recompile limit (8 per stage).
    torch._dynamo.reset()
    if MODES[mode] is not None:
        pipe.transformer.compile(**MODES[mode])
    # The same prompt for every row, so that the rows' outputs can be compared.
    embeds = torch.randn(1, text_tokens, pipe.transformer.config.text_dim, generator=torch.Generator().manual_seed(0))
    embeds = embeds.to(device, pipe.transformer.dtype)
    cold_first_frame, _, _ = _stream(pipe, embeds, device, output_type, pipe.config.window + 2)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    first_frame, per_chunk, output = _stream(pipe, embeds, device, output_type, chunks)
    steady = per_chunk[pipe.transformer.config.chunk_frames + 2 :] or per_chunk[1:]  # past the window's warm-up
    frames, seconds = sum(f for f, _ in steady), sum(s for _, s in steady)
    row = {
        "backend": backend,
        "mode": mode if mode == "eager" or is_compiled(pipe.transformer) else f"{mode} (fell back to eager)",
        "cold_first_frame_s": round(cold_first_frame, 3),
        "time_to_first_frame_s": round(first_frame, 3),
        "fps_steady": round(frames / seconds, 2),
        "ms_per_chunk_median": round(statistics.median(s for _, s in steady) * 1000, 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None,
    }
    return row, output


def _stream(pipe, embeds, device: str, output_type: str, chunks: int) -> tuple[float, list[tuple[int, float]], torch.Tensor]:
    """Time to first frame, [(frames, seconds)] per chunk and the output of a `chunks`-chunk stream."""
    stream = pipe.stream(prompt_embeds=embeds, generator=torch.Generator().manual_seed(0), output_type=output_type)
    began = last = time.perf_counter()
    first_frame, per_chunk, outputs = None, [], []
    # Latents count as the pixel frames they decode to (steady chunks: temporal_compression each).
    frame_axis, frames_per_item = (2, pipe.vae.temporal_compression) if output_type == "latent" else (1, 1)
    for chunk in stream:
        _synchronize(device)
        now = time.perf_counter()
        if first_frame is None:
            first_frame = now - began
        per_chunk.append((chunk.frames.shape[frame_axis] * frames_per_item, now - last))
        outputs.append(torch.as_tensor(chunk.frames[0]).to("cpu", torch.float32))
        last = now
        if len(per_chunk) == chunks:
            break
    stream.close()
    return first_frame, per_chunk, torch.cat(outputs, dim=frame_axis - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="wan-1.3b", help="model size (default wan-1.3b)")
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="bf16", help="transformer dtype (default bf16)")
    parser.add_argument("--vae-dtype", choices=tuple(DTYPES), default="fp32", help="VAE dtype (default fp32)")
    parser.add_argument("--backends", default="sdpa", help="comma list of sdpa, flex, flash, xformers")
    parser.add_argument("--modes", default="eager,compiled", help=f"comma list of {', '.join(MODES)} (default eager,compiled)")
    parser.add_argument("--chunks", type=int, default=12, help="chunks to stream per run (3 latent frames each)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its convolution kernels (the VAE's) first")
    parser.add_argument("--latent", action="store_true", help="stream latents: the transformer alone, no VAE decode")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("wan_benchmark: error: --device cuda but no CUDA GPU is visible; use --size tiny --device cpu", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        print(f"wan_benchmark: error: unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    pipe = wan_pipeline(args.size, args.device, DTYPES[args.dtype], DTYPES[args.vae_dtype])
    output_type = "latent" if args.latent else "np"
    rows, eager_output = [], None
    for backend in args.backends.split(","):
        for mode in modes:
            try:
                row, output = benchmark_backend(pipe, backend, mode, args.chunks, args.device, SIZES[args.size][4], output_type)
            except (ImportError, RuntimeError, ValueError) as error:  # a kernel this machine lacks: say so, go on
                row, output = {"backend": backend, "mode": mode, "error": str(error).splitlines()[0]}, None
            if output is not None:
                eager_output = output if eager_output is None and mode == "eager" else eager_output
                if eager_output is not None:
                    row["max_abs_diff_vs_eager"] = round((output - eager_output).abs().max().item(), 4)
            rows.append(row)
            _report(row, args.json)
    figures = {
        "size": args.size, "device": args.device, "dtype": args.dtype, "vae_dtype": args.vae_dtype,
        "cudnn_benchmark": args.cudnn_benchmark, "chunks": args.chunks, "output": output_type, "rows": rows,
    }  # fmt: skip
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


def _report(row: dict, as_json: bool) -> None:
    """A row as soon as it is measured (a long run cut short keeps its rows); --json prints them all at the end."""
    if not as_json:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
