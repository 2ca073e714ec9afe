"""`avgen bench official`: the official samplers' schedules on the official-tiny fixture, ms per latent frame.

The fixture (shared/fixtures/official-tiny) holds a tiny random Self-Forcing-format checkpoint
and the milliseconds per latent frame its README measured for the unmodified official
samplers on a 2-core CPU. This converts the checkpoint in memory (no base folder: the inputs
are latents and text embeddings, the output latents), runs the Rolling Forcing and
Self-Forcing schedules through `RollingForcingPipeline` from the fixture's own noise, and
prints the median of several runs beside the official figure.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import torch

# (recipe, latent frames, fixture output whose row in the README is the reference, pipeline settings)
SCHEDULES = (
    ("rolling-forcing", 21, "rf_out_21", {}),
    ("rolling-forcing", 60, None, {}),
    ("self-forcing", 21, "sf_out_21_global", {}),
    ("self-forcing", 60, "sf_out_60_local21_sink0", {"attention_chunks": 7}),
)
# The official Rolling Forcing sampler at 60 frames, measured on a 2-core machine like the README's
# (issue #27); the README's table has no 60-frame Rolling Forcing row.
OFFICIAL_ROLLING_60 = 3.80


def official_figures(fixture: Path) -> dict[str, float]:
    """{output file stem: ms per latent frame} from the fixture README's table."""
    figures = {}
    for line in (fixture / "README.md").read_text().splitlines():
        row = re.match(r"\|\s*`(\w+)\.pt`\s*\|.*\|\s*([\d.]+)\s*\|\s*$", line)
        if row:
            figures[row[1]] = float(row[2])
    return figures


def fixture_pipeline(fixture: Path, recipe_name: str):
    """A video-only RollingForcingPipeline around the fixture's generator_ema, with the recipe's settings."""
    from avgen.codecs.video import VideoCodec
    from avgen.convert.checkpoint import load_generator, to_diffusers, wan_architecture
    from avgen.convert.pipeline_folder import transformer_config
    from avgen.convert.recipes import recipe
    from avgen.models.transformer import CausalAVTransformer
    from avgen.pipelines.rolling_forcing import RollingForcingPipeline
    from avgen.scheduler import FlowMatchShortcutScheduler

    settings = recipe(recipe_name)
    state = load_generator(fixture / "tiny_self_forcing_format.pt")
    cfg = torch.load(fixture / "inputs.pt", weights_only=True)["tiny_cfg"]
    arch = wan_architecture(state, cfg["num_heads"])
    transformer = CausalAVTransformer(**transformer_config(arch, settings)).eval()
    transformer.video.load_state_dict(to_diffusers(state), strict=True)
    pipe = RollingForcingPipeline(
        transformer=transformer,
        vae=VideoCodec(base_dim=8, z_dim=arch["in_dim"]).eval(),  # sizes only: the output stays latent
        text_encoder=None,
        scheduler=FlowMatchShortcutScheduler(**settings.scheduler_config()),
        **settings.sampling_defaults(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def benchmark_official(fixture: str | Path, frames: int | None = None, runs: int = 9, compile: bool = False) -> dict:
    """Median ms per latent frame of each schedule over `runs` runs after a warm-up one (at `frames`
    latent frames, or the fixture's); with `compile`, each schedule again with the transformer compiled."""
    fixture = Path(fixture)
    if not (fixture / "inputs.pt").is_file():
        raise ValueError(f"{str(fixture)!r} is not the official-tiny fixture (no inputs.pt): pass shared/fixtures/official-tiny")
    inputs = torch.load(fixture / "inputs.pt", weights_only=True)
    official = official_figures(fixture)
    rows = []
    for name, length, output, settings in SCHEDULES:
        if frames is not None and length != frames:
            continue
        pipe = fixture_pipeline(fixture, name)
        noise = inputs[f"noise_{length}"].permute(0, 2, 1, 3, 4)  # (B, F, C, H, W) -> (B, C, F, H, W)

        def sample(pipe=pipe, noise=noise, settings=settings):
            pipe(prompt_embeds=inputs["prompt_embeds"], latents=noise, generator=torch.Generator().manual_seed(1234), output_type="latent", **settings)

        for compiled in (False, True) if compile else (False,):
            if compiled:
                pipe.transformer.compile()
            first_seconds, timings = _timed_runs(sample, runs, length)
            rows.append(
                {
                    "schedule": name,
                    "latent_frames": length,
                    "settings": settings,
                    "compiled": compiled,
                    "ms_per_latent_frame": round(statistics.median(timings), 2),
                    "spread": [round(min(timings), 2), round(max(timings), 2)],
                    "first_run_seconds": round(first_seconds, 2),  # compiled: mostly compilation
                    "official_ms_per_latent_frame": official.get(output) if output else OFFICIAL_ROLLING_60,
                }
            )
    return {"fixture": str(fixture), "runs": runs, "threads": torch.get_num_threads(), "rows": rows}


def _timed_runs(sample, runs: int, length: int) -> tuple[float, list[float]]:
    """Seconds of a first, untimed run (it warms the kernels and layout tables up, or compiles),
    then ms per latent frame of each of `runs` runs."""
    timings = []
    with torch.inference_mode():
        for run in range(runs + 1):
            began = time.perf_counter()
            sample()
            elapsed = time.perf_counter() - began
            if run:
                timings.append(elapsed * 1000 / length)
            else:
                first = elapsed
    return first, timings


def benchmark_long_stream(fixture: str | Path, recipe_name: str = "rolling-forcing", multiple: int = 10, marks: int = 4) -> dict:
    """Stream `multiple` times the fixture model's training length (21 latent frames), decoded by a
    random tiny Wan VAE, with the prompt changed half-way; memory and ms per chunk at `marks` points."""
    from avgen.pipelines.benchmark import current_rss_bytes, peak_rss_bytes

    fixture = Path(fixture)
    inputs = torch.load(fixture / "inputs.pt", weights_only=True)
    pipe = fixture_pipeline(fixture, recipe_name)
    chunk_frames = pipe.transformer.config.chunk_frames
    num_chunks = multiple * 21 // chunk_frames
    embeds = inputs["prompt_embeds"]
    stream = pipe.stream(
        prompt_embeds=embeds, num_frames=pipe.frames_of(num_chunks), height=64, width=64, generator=torch.Generator().manual_seed(0)
    )
    every = max(1, num_chunks // marks)
    rows, timings = [], []
    last = time.perf_counter()
    for chunk in stream:
        now = time.perf_counter()
        timings.append((now - last) * 1000)
        last = now
        if chunk.index == num_chunks // 2:
            stream.set_prompt(prompt_embeds=embeds.flip(1))  # another prompt: the same tokens in reverse order
        if (chunk.index + 1) % every == 0:
            rows.append(
                {
                    "latent_frames": (chunk.index + 1) * chunk_frames,
                    "rss_mb": round(current_rss_bytes() / 2**20, 1),
                    "ms_per_chunk_median_recent": round(statistics.median(timings[-every:]), 2),
                }
            )
        last = time.perf_counter()
    return {"recipe": recipe_name, "training_latent_frames": 21, "latent_frames": num_chunks * chunk_frames,
            "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1), "marks": rows}  # fmt: skip
