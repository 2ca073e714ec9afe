"""`avgen footage check FOLDER`: what a training run would take from a folder of footage, nothing encoded.

    avgen footage check FOLDER [--model-config PIPELINE_FOLDER] [--latent-frames N] [--json]

Prints the files, clips and seconds a training run would use and every skipped file with its
reason; exit status 0, or 1 when no clip is usable. Errors a user can cause (a missing or empty
folder, no video files, metadata naming a missing file, a --model-config that is not a model)
are one-line ValueErrors, which avgen's main prints with exit status 2. Importing this module
costs nothing: avgen.cli registers the command at start-up.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_footage_parser(commands: argparse._SubParsersAction) -> None:
    """Register `footage check` on the subcommands of the avgen parser."""
    footage = commands.add_parser("footage", help="real video files with captions as training data")
    actions = footage.add_subparsers(dest="footage", required=True, parser_class=type(footage))
    check = actions.add_parser(
        "check", help="list the files, clips and seconds a training run would use, and the files it skips and why"
    )
    check.add_argument("folder", help="folder of video files (mp4, mov, mkv, webm) with captions in metadata.jsonl or .txt files")
    check.add_argument(
        "--model-config",
        help="pipeline folder whose fps, frame size and codecs the clips are cut for (default: avgen-tiny's 16 fps, 64x64, 16 kHz mono)",
    )
    check.add_argument("--latent-frames", type=int, default=None, help="clip length in latent frames (default: the model's, else 8)")
    check.add_argument("--json", action="store_true", help="print JSON (with one row per file) instead of a table")
    check.set_defaults(run=check_footage)


def check_footage(args: argparse.Namespace) -> int:
    from avgen.data.footage import FootageSpec, scan_footage

    if args.latent_frames is not None and args.latent_frames < 1:
        raise ValueError(f"--latent-frames must be >= 1, got {args.latent_frames}")
    if args.model_config:
        spec = FootageSpec.from_model_folder(args.model_config, latent_frames=args.latent_frames)
    else:
        spec = FootageSpec(**({"latent_frames": args.latent_frames} if args.latent_frames else {}))
    index = scan_footage(args.folder, spec, progress=not args.json)
    summary = index.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_table(summary)
    if not index.clips:
        print(f"avgen footage: no usable clip in {args.folder!r}: every file is skipped (reasons above)", file=sys.stderr)
        return 1
    return 0


def _print_table(summary: dict) -> None:
    model = summary["model"]
    channels = {1: "mono", 2: "stereo"}.get(model["audio_channels"], f"{model['audio_channels']} channels")
    audio = f"{model['sample_rate']} Hz {channels}" if model["sample_rate"] else "no audio (a video-only model)"
    rows = {
        "folder": summary["folder"],
        "model": f"{model['fps']} fps, {model['width']}x{model['height']}, {audio}",
        "clip": f"{model['clip_frames']} frames ({model['clip_seconds']:g} s, {model['latent_frames']} latent frames)",
        "files": f"{len(summary['files'])} used, {len(summary['skipped'])} skipped",
        "clips": summary["clips"],
        "seconds": f"{summary['seconds']:.2f} in clips, of {summary['footage_seconds']:.2f} in the files used",
    }
    for name, value in rows.items():
        print(f"{name:10s} {value}")
    for number, skipped in enumerate(summary["skipped"]):
        print(f"{'skipped' if number == 0 else '':10s} {skipped['file']}: {skipped['reason']}")
