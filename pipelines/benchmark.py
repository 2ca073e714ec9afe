"""`avgen bench stream`: memory and speed of a long streamed generation."""

from __future__ import annotations

import resource
import statistics
import time

import torch


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_tiny_pipeline(pipeline: str = "rolling"):
    """Untrained components of the shipped sizes: speed and memory do not depend on the weights.

    They accept every input a trained model may (given audio, a video to voice), so that each
    of the app's and the CLI's paths runs without weights."""
    from avgen.codecs.presets import tiny_audio_codec, tiny_video_codec
    from avgen.models.transformer import CausalAVTransformer
    from avgen.pipelines.mutual_forcing import MutualForcingPipeline
    from avgen.pipelines.rolling_forcing import RollingForcingPipeline
    from avgen.scheduler import FlowMatchShortcutScheduler
    from avgen.text import WorldTextEncoder

    torch.manual_seed(0)
    cls = RollingForcingPipeline if pipeline == "rolling" else MutualForcingPipeline
    return cls(
        transformer=CausalAVTransformer.from_preset("tiny", audio_conditioning=True, video_conditioning=True).eval(),
        vae=tiny_video_codec().eval(),
        audio_codec=tiny_audio_codec().eval(),
        text_encoder=WorldTextEncoder().eval(),
        scheduler=FlowMatchShortcutScheduler(),
    )


PROMPTS = (
    "A red round face with glasses talks in a deep voice on a navy background.",
    "A red round face with glasses talks in a deep voice on a navy background; now and then it hops and lands with a thud.",
)


def benchmark_stream(
    pipe,
    minutes: float = 10.0,
    steps: int | None = None,
    marks_minutes=(1.0, 5.0, 10.0),
    progress: bool = False,
    height: int | None = None,
    width: int | None = None,
) -> dict:
    """Warm the pipeline up (`warm_up`), then stream `minutes` of audio + video and report memory
    and time per chunk at the marks, the time to the first chunk after the prompt is encoded, and
    the share of the time the stream spent decoding latents into frames and samples, or waiting
    for frames decoded ahead (the codecs' part).

    The prompt changes half-way (the second of `PROMPTS`), as a creator steering a stream does.
    `steps`, `height` and `width` default to the folder's; the stream is guided as the folder
    says (its `guidance_scale` and `audio_guidance_scale`, which the warm-up runs too).
    """
    from avgen.pipelines.streaming import DEFAULT_STEPS

    pipe.set_progress_bar_config(disable=True)
    # As a server does after loading: the first chunk then finds its kernels compiled.
    warm_up_seconds = pipe.warm_up(height=height, width=width)
    pipe.set_progress_bar_config(disable=not progress)
    marks = sorted(m for m in marks_minutes if m <= minutes) or [minutes]
    timings: list[float] = []
    report, seconds_made = {}, 0.0
    stream = pipe.stream(
        PROMPTS[0], seconds=minutes * 60, num_inference_steps=steps, height=height, width=width,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    changed = False
    began = last = time.perf_counter()
    for chunk in stream:
        now = time.perf_counter()
        timings.append((now - last) * 1000)
        last = now
        seconds_made += chunk.frames.shape[1] / pipe.fps
        if not changed and seconds_made >= minutes * 30:
            stream.set_prompt(PROMPTS[1])
            changed = True
        while marks and seconds_made >= marks[0] * 60 - 1e-9:
            recent = timings[-max(1, len(timings) // 4) :]
            report[f"{marks[0]:g}min"] = {
                "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
                "rss_mb": round(current_rss_bytes() / 2**20, 1),
                "ms_per_chunk_median_recent": round(statistics.median(recent), 2),
            }
            marks.pop(0)
    wall = time.perf_counter() - began
    return {
        "minutes": minutes,
        "steps": steps or pipe.scheduler.default_steps or DEFAULT_STEPS,
        "chunks": len(timings),
        "chunk_seconds": round(seconds_made / max(len(timings), 1), 4),
        "av_seconds_per_wall_second": round(seconds_made / wall, 3),
        "first_chunk_ms": round(timings[0], 1) if timings else None,
        "warm_up_ms": round(warm_up_seconds * 1000, 1),
        "decode_share": round(stream.decoding_seconds / wall, 3),
        "decode_ahead": pipe.decodes_ahead,
        "marks": report,
    }
