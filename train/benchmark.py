"""Training throughput of the four stages: steps and samples per second.

    python train/benchmark.py --steps 10 --threads 2
    python train/benchmark.py --device cuda --json

Runs each stage's real objective and optimizer step on latents of untrained codecs (the
speed of a step does not depend on the weights) and prints one row per stage (or --json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from avgen.codecs.presets import tiny_audio_codec, tiny_video_codec  # noqa: E402
from avgen.training import STAGES, load_config  # noqa: E402
from avgen.training.trainer import Trainer  # noqa: E402


def benchmark(stage: str, args, codecs: Path, scratch: Path) -> dict:
    values = dict(
        preset=args.preset, codecs=str(codecs), clips=max(args.batch_size, 8), clip_chunks=args.clip_chunks,
        batch_size=args.batch_size, steps=args.steps + 1, device=args.device, threads=args.threads,
        cache_dir=str(scratch / "cache"), output_dir=str(scratch / stage), checkpoint_every=10**9,
    )  # fmt: skip
    trainer = Trainer(load_config(stage=stage, overrides=[f"{k}={v}" for k, v in values.items()]), progress=False)
    records = [trainer.train_step() for _ in range(args.steps + 1)][1:]  # the first step warms up allocators
    seconds = statistics.median(record["seconds"] for record in records)
    return {
        "stage": stage,
        "steps_per_second": round(1 / seconds, 3),
        "samples_per_second": round(args.batch_size / seconds, 2),
        "seconds_per_step": round(seconds, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help="only tiny: the world's codecs give the tiny model's latents")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clip-chunks", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per stage (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.preset != "tiny":
        sys.exit("error: only the tiny codecs exist here; other presets need codecs of their latent size")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        torch.manual_seed(0)
        tiny_video_codec().save_pretrained(scratch / "codecs" / "vae")
        tiny_audio_codec().save_pretrained(scratch / "codecs" / "audio_codec")
        rows = [benchmark(stage, args, scratch / "codecs", scratch) for stage in args.stages]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'stage':<16}{'steps/s':>10}{'samples/s':>12}{'s/step':>10}   (preset {args.preset}, batch {args.batch_size}, {args.clip_chunks} chunks, {args.device})")
    for row in rows:
        print(f"{row['stage']:<16}{row['steps_per_second']:>10}{row['samples_per_second']:>12}{row['seconds_per_step']:>10}")


if __name__ == "__main__":
    main()
