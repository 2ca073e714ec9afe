"""`avgen eval`: generate from held-out characters' prompts and measure what the world makes exact.

For each held-out clip of the world, its prompt (character and events) is generated for
`seconds` and the generated frames + audio go through the same metrics as real clips:
lip sync (offset and confidence), attributes read back from the pixels against the prompt,
and ΔDrift between the first and last seconds. The pipeline, steps, window and KV-cache
layout are arguments, so the Rolling Forcing and Mutual Forcing comparisons are runs of
this one function.

`dub=True` evaluates voicing instead (`video=`): each held-out clip's own video, rendered by the
world, is given to the model, which makes its sound; sync is the given mouth against the
generated voice (adherence and drift would read the given video, so they are not reported).
`drive=True` is the other way round (`audio=`): the clip's own voice is given and the model's mouth
is scored against it.

`source="world"` or `"codecs"` scores the held-out clips themselves, as the world renders them or
through the model's codecs (encoded as training latents are, decoded as the pipelines decode):
the ceilings a generation's figures are read against, so that a figure lost between the world
and the screen can be placed in the codecs or in the generator. Each row also says how much the
mouth moves at all, the share of its seconds that show each asked-for attribute (a background
lapsing for a second or two counts against it), and a clip of 40 s or more the sync of its
first and last 20 s.

Clips are independent, so processes (`workers`), each with its own copy of the pipeline, can
share them out; a clip's row depends only on its seed, not on which process made it.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from avgen.codecs.av import AVDecoder, encode_clip
from avgen.codecs.evaluation import frames_to_video
from avgen.codecs.precision import cast_codec
from avgen.metrics import evaluate, measure_sync
from avgen.metrics.attributes import READ_ATTRIBUTES
from avgen.world.clip import sample_clip
from avgen.world.paraphrase import evaluation_prompt

# How a held-out character is asked for: the world's own phrasings, or paraphrases in words no
# training prompt used (avgen/world/paraphrase.py).
PHRASINGS = ("world", "paraphrases")
# What a row scores: the pipeline's generation, or the held-out clip itself as the world renders
# it or through the pipeline's codecs.
SOURCES = ("generated", "world", "codecs")
# A long clip's sync is also scored on its first and its last this many seconds (early vs late).
SEGMENT_SECONDS = 20.0


def generate_clip(pipe, prompt: str, seconds: float | None, seed: int, **settings) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames (F, H, W, 3) uint8, audio (C, S) and the wall seconds it took (seconds None: a given video's length)."""
    began = time.perf_counter()
    chunks = list(pipe.stream(prompt, seconds=seconds, generator=torch.Generator().manual_seed(seed), **settings))
    wall = time.perf_counter() - began
    return np.concatenate([c.frames[0] for c in chunks]), np.concatenate([c.audio[0] for c in chunks], axis=-1), wall


def reference_clip(pipe, clip, seconds: float, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The world's own frames (F, H, W, 3) uint8 and audio (C, S) of `clip`, as rendered or through `pipe`'s codecs."""
    num_frames = round(seconds * pipe.fps)
    if source == "world":
        chunk = clip.render(0, num_frames)
        return chunk.frames, chunk.audio
    # The codecs take whole latent frames: render the chunks that cover the clip, cut after decoding.
    chunk = clip.render(0, pipe.frames_of(pipe.num_chunks_for(seconds)))
    video = frames_to_video(chunk.frames).to(pipe.vae.dtype)  # (1, 3, F, H, W)
    audio = torch.from_numpy(chunk.audio)[None].to(pipe.audio_codec.dtype)  # (1, C, S)
    with torch.no_grad():
        latents = encode_clip(pipe.vae, pipe.audio_codec, video, audio, pipe.fps, pipe.sample_rate)
        frames, samples = AVDecoder(pipe.vae, pipe.audio_codec, pipe.fps, pipe.sample_rate).decode(*latents)
    return frames[0, :num_frames], samples[0, :, : num_frames * pipe.sample_rate // pipe.fps]


def evaluate_clip(
    pipe,
    seed: int,
    seconds: float,
    phrasing: str = "world",
    dub: bool = False,
    drive: bool = False,
    source: str = "generated",
    **settings,
) -> dict:
    """One row of the evaluation: held-out prompt `seed` generated with noise seed `seed` (or the
    clip itself, `source`), then measured."""
    clip = sample_clip(seed, split="held-out")
    prompt = clip.prompt if phrasing == "world" else evaluation_prompt(clip.character, clip.events, seed)
    wall = None
    if source != "generated":
        frames, audio = reference_clip(pipe, clip, seconds, source)
    elif dub:
        given = clip.render(0, round(seconds * pipe.fps)).frames
        frames, audio, wall = generate_clip(pipe, prompt, None, seed, video=given, **settings)
    elif drive:
        given = clip.render(0, round(seconds * pipe.fps)).audio
        frames, audio, wall = generate_clip(pipe, prompt, seconds, seed, audio=given, **settings)
    else:
        frames, audio, wall = generate_clip(pipe, prompt, seconds, seed, **settings)
    report = evaluate(frames, audio, pipe.fps, pipe.sample_rate, prompt=prompt)
    row = {
        "seed": seed,
        "prompt": prompt,
        "offset_frames": report["sync"]["offset_frames"],
        "confidence": report["sync"]["confidence"],
        "mouth_motion": report["sync"]["mouth_motion_pixels"],
        "adherence": report["adherence"]["score"],
        "matches": report["adherence"]["matches"],
        "read": {name: report["attributes"][name] for name in report["adherence"]["matches"]},
        "delta_drift": report.get("drift", {}).get("delta_drift_levels"),
        "seconds_matching": report.get("drift", {}).get("seconds_matching"),
        "realtime_factor": round(len(frames) / pipe.fps / wall, 3) if wall else None,
    }
    segment = round(SEGMENT_SECONDS * pipe.fps)
    if len(frames) >= 2 * segment:
        samples = pipe.sample_rate // pipe.fps
        first = measure_sync(frames[:segment], audio[:, : segment * samples], pipe.fps, pipe.sample_rate)
        last = measure_sync(frames[-segment:], audio[:, (len(frames) - segment) * samples :], pipe.fps, pipe.sample_rate)
        row.update(confidence_first_segment=round(first.confidence, 4), confidence_last_segment=round(last.confidence, 4))
    if dub:  # the picture is the world's own: nothing of it was generated
        row.update(adherence=None, matches=None, read=None, delta_drift=None, seconds_matching=None)
    return row


def evaluate_pipeline(
    pipe,
    clips: int = 50,
    seconds: float = 20.0,
    num_inference_steps: int = 4,
    window: int | None = None,
    sink_chunks: int = 1,
    cache_chunks: int = 4,
    seed: int = 0,
    workers: int = 1,
    threads: int = 1,
    progress: bool = False,
    phrasing: str = "world",
    dub: bool = False,
    drive: bool = False,
    source: str = "generated",
    audio_guidance_scale: float | None = None,
    guidance_scale: float | None = None,
) -> dict:
    """Summary figures over `clips` held-out prompts (seeds `seed`...), plus one row per clip.

    With `workers` > 1 the clips are shared among that many processes of `threads` torch
    threads each, which load their own copies of `pipe` from the folder it was loaded from.
    `audio_guidance_scale`, `guidance_scale` None: the folder's; `guidance_scale` > 1:
    classifier-free guidance against the empty prompt.
    """
    if phrasing not in PHRASINGS:
        raise ValueError(f"unknown phrasing {phrasing!r}: choose one of {', '.join(PHRASINGS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    if sum([dub, drive, source != "generated"]) > 1:
        raise ValueError("choose one of --dub, --drive and --source world/codecs: each scores a different clip")
    settings = dict(
        num_inference_steps=num_inference_steps, window=window, sink_chunks=sink_chunks, cache_chunks=cache_chunks,
        phrasing=phrasing, dub=dub, drive=drive, source=source, audio_guidance_scale=audio_guidance_scale,
        guidance_scale=guidance_scale,
    )  # fmt: skip
    seeds = range(seed, seed + clips)
    bar = dict(desc="evaluating", unit="clip", disable=not progress)
    pipe.set_progress_bar_config(disable=True)
    if workers == 1:
        rows = [evaluate_clip(pipe, clip_seed, seconds, **settings) for clip_seed in tqdm(seeds, **bar)]
    else:
        if not pipe.name_or_path:
            raise ValueError("workers load the pipeline from its folder: save it with save_pretrained and load it from there")
        # spawn, not fork: a forked child inherits torch's thread pool in an unusable state.
        context = get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_load, initargs=(type(pipe), pipe.name_or_path, threads, pipe.vae.dtype)) as pool:
            futures = [pool.submit(_evaluate_loaded, clip_seed, seconds, settings) for clip_seed in seeds]
            rows = sorted((future.result() for future in tqdm(as_completed(futures), total=clips, **bar)), key=lambda row: row["seed"])
    return {
        "pipeline": type(pipe).__name__,
        "clips": clips,
        "seconds": seconds,
        "steps": num_inference_steps,
        "window": pipe.schedule(num_inference_steps, window, dubbing=dub)[0],  # the window it ran in
        "window_attention": pipe.config.window_attention,
        "audio_guidance_scale": pipe.config.audio_guidance_scale if audio_guidance_scale is None else audio_guidance_scale,
        "guidance_scale": pipe.config.guidance_scale if guidance_scale is None else guidance_scale,
        "guidance_from_level": pipe.config.guidance_from_level,
        "guidance_area_below_level": pipe.config.guidance_area_below_level,
        "audio_guidance_area": pipe.config.audio_guidance_area,
        "sink_chunks": sink_chunks,
        "cache_chunks": cache_chunks,
        "phrasing": phrasing,
        "dub": dub,
        "drive": drive,
        "source": source,
        **summarize(rows),
        "rows": rows,
    }


def summarize(rows: list[dict]) -> dict:
    """The table's figures over evaluated clips (rows of `evaluate_clip`)."""
    offsets = [row["offset_frames"] for row in rows]
    drifts = [row["delta_drift"] for row in rows if row["delta_drift"] is not None]
    lasting = [row["seconds_matching"] for row in rows if row.get("seconds_matching")]
    judged = [row for row in rows if row["adherence"] is not None]  # none when dubbing
    speeds = [row["realtime_factor"] for row in rows if row["realtime_factor"] is not None]  # none for the world's clips
    segments = {
        f"sync_confidence_{part}_segment_median": round(statistics.median(row[f"confidence_{part}_segment"] for row in rows), 4)
        for part in ("first", "last")
        if all(f"confidence_{part}_segment" in row for row in rows)
    }
    return {
        "sync_within_1_frame": round(float(np.mean([abs(o) <= 1 for o in offsets])), 4),
        "sync_offset_0": round(float(np.mean([o == 0 for o in offsets])), 4),
        "sync_confidence_median": round(statistics.median(row["confidence"] for row in rows), 4),
        **segments,
        "mouth_motion_median": round(statistics.median(row["mouth_motion"] for row in rows), 4),
        "attribute_adherence": round(float(np.mean([row["adherence"] for row in judged])), 4) if judged else None,
        "attribute_adherence_by_name": {
            name: round(float(np.mean([row["matches"][name] for row in judged])), 4) for name in judged[0]["matches"]
        } if judged else None,
        "delta_drift_mean": round(float(np.mean(drifts)), 4) if drifts else None,
        # The worst clip's share of seconds that show each asked-for attribute: a lapse anywhere shows.
        "seconds_matching_worst_clip": {
            name: min(shares[name] for shares in lasting if name in shares)
            for name in READ_ATTRIBUTES
            if any(name in shares for shares in lasting)
        } if lasting else None,
        "realtime_factor_median": round(statistics.median(speeds), 3) if speeds else None,
    }


# A worker process evaluates many clips with one copy of the pipeline, loaded once by `_load`.
_worker_pipe = None


def _load(pipeline_class: type, folder: str | Path, threads: int, vae_dtype: torch.dtype) -> None:
    from diffusers.utils import logging as diffusers_logging

    global _worker_pipe
    diffusers_logging.disable_progress_bar()  # one bar per worker would garble the clips' bar
    torch.set_num_threads(threads)
    _worker_pipe = pipeline_class.from_pretrained(folder)
    cast_codec(_worker_pipe.vae, vae_dtype)
    _worker_pipe.set_progress_bar_config(disable=True)


def _evaluate_loaded(seed: int, seconds: float, settings: dict) -> dict:
    return evaluate_clip(_worker_pipe, seed, seconds, **settings)
