"""`avgen eval`: generate from held-out characters' prompts and measure what the world makes exact.

For each held-out clip of the world, its prompt (character and events) is generated for
`seconds` and the generated frames + audio go through the same metrics as real clips:
lip sync (offset and confidence), attributes read back from the pixels against the prompt,
and ΔDrift between the first and last seconds. The pipeline, steps, window and KV-cache
layout are arguments, so the Rolling Forcing and Mutual Forcing comparisons are runs of
this one function.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from avgen.metrics import evaluate
from avgen.world.clip import sample_clip


def generate_clip(pipe, prompt: str, seconds: float, seed: int, **settings) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames (F, H, W, 3) uint8, audio (C, S) and the wall seconds it took."""
    began = time.perf_counter()
    chunks = list(pipe.stream(prompt, seconds=seconds, generator=torch.Generator().manual_seed(seed), **settings))
    wall = time.perf_counter() - began
    return np.concatenate([c.frames[0] for c in chunks]), np.concatenate([c.audio[0] for c in chunks], axis=-1), wall


def evaluate_pipeline(
    pipe,
    clips: int = 50,
    seconds: float = 20.0,
    num_inference_steps: int = 4,
    window: int | None = None,
    sink_chunks: int = 1,
    cache_chunks: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Summary figures over `clips` held-out prompts, plus one row per clip."""
    settings = dict(num_inference_steps=num_inference_steps, window=window, sink_chunks=sink_chunks, cache_chunks=cache_chunks)
    rows = []
    seeds = range(seed, seed + clips)
    if progress:
        from tqdm.auto import tqdm

        seeds = tqdm(seeds, desc="evaluating", unit="clip")
    pipe.set_progress_bar_config(disable=True)
    for clip_seed in seeds:
        prompt = sample_clip(clip_seed, split="held-out").prompt
        frames, audio, wall = generate_clip(pipe, prompt, seconds, clip_seed, **settings)
        report = evaluate(frames, audio, pipe.fps, pipe.sample_rate, prompt=prompt)
        rows.append(
            {
                "seed": clip_seed,
                "offset_frames": report["sync"]["offset_frames"],
                "confidence": report["sync"]["confidence"],
                "adherence": report["adherence"]["score"],
                "matches": report["adherence"]["matches"],
                "read": {name: report["attributes"][name] for name in report["adherence"]["matches"]},
                "delta_drift": report.get("drift", {}).get("delta_drift_levels"),
                "realtime_factor": round(len(frames) / pipe.fps / wall, 3),
            }
        )
    offsets = [row["offset_frames"] for row in rows]
    drifts = [row["delta_drift"] for row in rows if row["delta_drift"] is not None]
    return {
        "pipeline": type(pipe).__name__,
        "clips": clips,
        "seconds": seconds,
        "steps": num_inference_steps,
        "window": window,
        "sink_chunks": sink_chunks,
        "cache_chunks": cache_chunks,
        "sync_within_1_frame": round(float(np.mean([abs(o) <= 1 for o in offsets])), 4),
        "sync_offset_0": round(float(np.mean([o == 0 for o in offsets])), 4),
        "sync_confidence_median": round(statistics.median(row["confidence"] for row in rows), 4),
        "attribute_adherence": round(float(np.mean([row["adherence"] for row in rows])), 4),
        "attribute_adherence_by_name": {
            name: round(float(np.mean([row["matches"][name] for row in rows])), 4) for name in rows[0]["matches"]
        },
        "delta_drift_mean": round(float(np.mean(drifts)), 4) if drifts else None,
        "realtime_factor_median": round(statistics.median(row["realtime_factor"] for row in rows), 3),
        "rows": rows,
    }
