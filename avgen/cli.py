"""The `avgen` command line.

    avgen generate "A red round face ..." --seconds 30 --steps 4 --pipeline rolling|mutual -o out.mp4 [--image ref.png]
    avgen generate "A red round face ..." --video silent.mp4 -o dubbed.mp4        # the video's own sound
    avgen convert CHECKPOINT --base WAN_FOLDER --recipe self-forcing|rolling-forcing|... -o OUT [--lora FILE]
    avgen footage check FOLDER [--model-config MODEL] [--json]
    avgen render-world --seed 3 --seconds 10 -o clip.mp4 [--held-out] [--shape round ...]
    avgen eval-media clip.mp4 [--prompt "..."]
    avgen bench world [--clips 200] [--json]
    avgen bench model [--preset tiny] [--chunks 100] [--json]
    avgen eval codecs [--model weights/avgen-tiny] [--clips 50] [--reference FOLDER] [--json]

Errors a user can cause print one line that says what to do and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MAX_SECONDS = 3600.0
DEFAULT_SECONDS = 10.0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= {MAX_SECONDS:g}, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _events(text: str) -> frozenset[str]:
    from avgen.world import EVENTS

    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if names == {"none"}:
        return frozenset()
    unknown = sorted(names - set(EVENTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown event {', '.join(unknown) or text!r}: use a comma list of {', '.join(EVENTS)}, or none")
    return names


def render_world(args: argparse.Namespace) -> int:
    from avgen.media import check_writable, ffmpeg_exe, write_mp4, write_ts_segment
    from avgen.world import WorldConfig, sample_clip

    output = check_writable(args.output)
    ffmpeg_exe()  # fail before rendering, not after
    config = WorldConfig(fps=args.fps, height=args.size, width=args.size)
    attributes = {
        name: value
        for name in ("shape", "face_colour", "eyes", "background", "voice")
        if (value := getattr(args, name)) is not None
    }
    split = "held-out" if args.held_out else "train"
    clip = sample_clip(args.seed, split=split, events=args.events, config=config, **attributes)
    num_frames = max(1, round(args.seconds * config.fps))
    frames, audio = _render(clip, num_frames)
    if output.suffix.lower() == ".ts":
        write_ts_segment(output, frames, audio, config.fps, config.sample_rate)
    else:
        write_mp4(output, frames, audio, config.fps, config.sample_rate, metadata={"comment": clip.prompt})
    character = clip.character
    summary = {
        "output": str(output),
        "prompt": clip.prompt,
        "seconds": num_frames / config.fps,
        "split": split,
        "character": {"id": character.id, **{name: getattr(character, name) for name in character.__dataclass_fields__}},
        "events": sorted(clip.events),
        "seed": args.seed,
    }
    print(json.dumps(summary, indent=2))
    return 0


def _render(clip, num_frames: int):
    """Render chunk by chunk (one timeline block at a time) with a progress bar on long clips."""
    import numpy as np
    from tqdm.auto import tqdm

    step = clip.config.block_frames
    chunks = []
    with tqdm(total=num_frames, unit="frame", desc="rendering", disable=num_frames < 8 * step, file=sys.stderr) as bar:
        for start in range(0, num_frames, step):
            chunks.append(clip.render(start, min(step, num_frames - start)))
            bar.update(len(chunks[-1].frames))
    return np.concatenate([c.frames for c in chunks]), np.concatenate([c.audio for c in chunks], axis=1)


def eval_media(args: argparse.Namespace) -> int:
    from avgen.media import read_media
    from avgen.metrics import evaluate

    media = read_media(args.path)
    prompt = args.prompt if args.prompt is not None else media.metadata.get("comment")
    report = {"path": args.path, **evaluate(media.frames, media.audio, media.fps, media.sample_rate, prompt)}
    print(json.dumps(report, indent=2))
    return 0


def bench_world(args: argparse.Namespace) -> int:
    from avgen.metrics.calibration import calibrate

    figures = calibrate(clips=args.clips, seconds=args.seconds, split=args.split, seed=args.seed, progress=True)
    _print_figures(figures, args.json)
    return 0


def bench_model(args: argparse.Namespace) -> int:
    from avgen.models.presets import preset_config

    preset_config(args.preset)  # an unknown name fails before torch loads
    import torch

    from avgen.models.benchmark import benchmark_model

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    figures = benchmark_model(
        args.preset, args.chunks, device=args.device, dtype=dtypes[args.dtype], sink=args.sink, window=args.window,
        backend=args.backend, progress=not args.json,
    )  # fmt: skip
    _print_figures(figures, args.json)
    return 0


def bench_official(args: argparse.Namespace) -> int:
    import torch

    from avgen.pipelines.official_benchmark import benchmark_long_stream, benchmark_official

    torch.set_num_threads(args.threads)
    if args.long is not None:
        _print_figures(benchmark_long_stream(args.fixture, args.recipe, multiple=args.long), args.json)
        return 0
    figures = benchmark_official(args.fixture, frames=args.frames, runs=args.runs, compile=args.compile)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for row in figures["rows"]:
        mode = "compiled" if row["compiled"] else "eager"
        print(f"{row['schedule']:16s} {row['latent_frames']:3d} frames {mode:8s} {row['ms_per_latent_frame']:6.2f} ms/frame "
              f"(range {row['spread'][0]}-{row['spread'][1]})   official {row['official_ms_per_latent_frame']}")
    return 0


def bench_stream(args: argparse.Namespace) -> int:
    import torch

    from avgen.models.compilation import is_compiled
    from avgen.pipelines.benchmark import benchmark_stream, random_tiny_pipeline
    from avgen.pipelines.loading import load_pipeline

    pipe = random_tiny_pipeline(args.pipeline) if args.model is None else load_pipeline(args.model, args.pipeline)
    _prepare(pipe, args)
    # As the loaded folder's defaults, so that the warm-up runs the guided forwards too.
    if args.audio_guidance is not None:
        pipe.register_to_config(audio_guidance_scale=args.audio_guidance)
    if args.guidance is not None:
        pipe.register_to_config(guidance_scale=args.guidance)
    figures = benchmark_stream(pipe, minutes=args.minutes, steps=args.steps, progress=not args.json, height=args.height, width=args.width)
    figures.update(
        model=args.model or "random tiny", pipeline=args.pipeline, threads=args.threads, torch_threads=torch.get_num_threads(),
        compiled=is_compiled(pipe.transformer), audio_guidance_scale=pipe.config.audio_guidance_scale,
        guidance_scale=pipe.config.guidance_scale, guidance_from_level=pipe.config.guidance_from_level,
        guidance_area_below_level=pipe.config.guidance_area_below_level, audio_guidance_area=pipe.config.audio_guidance_area,
        vae_dtype=str(pipe.vae.dtype).removeprefix("torch."),
    )  # fmt: skip
    _print_figures(figures, args.json)
    return 0


def eval_model(args: argparse.Namespace) -> int:
    if args.sink_chunks < 0:
        raise ValueError(f"--sink-chunks must be >= 0, got {args.sink_chunks}")
    import torch

    from avgen.pipelines.evaluation import evaluate_pipeline
    from avgen.pipelines.loading import load_pipeline

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, args.pipeline)
    _prepare(pipe, args)
    figures = evaluate_pipeline(
        pipe, clips=args.clips, seconds=args.seconds, num_inference_steps=args.steps or 4, window=args.window,
        sink_chunks=args.sink_chunks, cache_chunks=args.cache_chunks, seed=args.seed, workers=args.workers,
        threads=args.threads, progress=not args.json, phrasing=args.phrasing, dub=args.dub, drive=args.drive,
        source=args.source, audio_guidance_scale=args.audio_guidance, guidance_scale=args.guidance,
    )  # fmt: skip
    if not args.json:
        figures.pop("rows")
    figures["model"] = args.model
    figures["vae_dtype"] = str(pipe.vae.dtype).removeprefix("torch.")
    _print_figures(figures, args.json)
    return 0


def eval_codecs(args: argparse.Namespace) -> int:
    from avgen.codecs.evaluation import evaluate_codecs
    from avgen.codecs.precision import codec_dtype

    figures = evaluate_codecs(
        args.model, clips=args.clips, latent_frames=args.latent_frames, progress=not args.json, reference=args.reference,
        video_decode_dtype=codec_dtype(args.vae_dtype, "cpu"),
    )  # fmt: skip
    _print_figures(figures, args.json)
    return 0


def _print_figures(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    for name, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4f}"
        print(f"{name:40s} {value}")


def generate(args: argparse.Namespace) -> int:
    from avgen.media import check_writable, ffmpeg_exe, write_mp4

    output = check_writable(args.output)
    if not args.prompt.strip():
        raise ValueError("the prompt is empty: describe the character, e.g. 'A red round face with glasses ...'")
    ffmpeg_exe()  # fail before generating, not after
    image = _read_image(args.image) if args.image else None
    import warnings

    import numpy as np
    import torch
    from diffusers.utils import logging as diffusers_logging

    from avgen.models.compilation import is_compiled
    from avgen.pipelines.loading import load_pipeline

    diffusers_logging.disable_progress_bar()  # loading bars would bury the one line a mistake prints
    warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*is deprecated", category=FutureWarning)
    pipe = load_pipeline(args.model, args.pipeline)
    _prepare(pipe, args)
    note = pipe.unsupported_requests(args.prompt)
    if note is not None:
        print(f"avgen generate: note: {note}", file=sys.stderr)
    seconds, num_frames = args.seconds, None
    if seconds is None and args.video is None:  # the folder's length (a converted checkpoint's official one), else 10 s
        num_frames = pipe.config.num_frames
        seconds = None if num_frames is not None else DEFAULT_SECONDS
    stream = pipe.stream(
        args.prompt, seconds=seconds, num_frames=num_frames, num_inference_steps=args.steps, guidance_scale=args.guidance,
        audio_guidance_scale=args.audio_guidance, image=image, video=args.video, generator=torch.Generator().manual_seed(args.seed), window=args.window,
        height=args.height, width=args.width,
    )  # fmt: skip
    chunks = list(stream)
    frames = np.concatenate([c.frames[0] for c in chunks])
    audio = np.concatenate([c.audio[0] for c in chunks], axis=-1) if pipe.has_audio else None
    write_mp4(output, frames, audio, pipe.fps, pipe.sample_rate, metadata={"comment": args.prompt})
    report = {"output": str(output), "prompt": args.prompt, "seconds": len(frames) / pipe.fps, "pipeline": args.pipeline}
    if args.compile:
        report["compiled"] = is_compiled(pipe.transformer)  # False: it fell back to eager (the warning says why)
    print(json.dumps({**report, **({"note": note} if note else {})}, indent=2))
    return 0


def convert(args: argparse.Namespace) -> int:
    import time

    from diffusers.utils import logging as diffusers_logging

    from avgen.convert.pipeline_folder import convert_checkpoint
    from avgen.convert.recipes import recipe

    diffusers_logging.disable_progress_bar()
    started = time.perf_counter()
    out = convert_checkpoint(
        args.checkpoint, args.base, recipe(args.recipe), args.output, weights=args.weights, lora=args.lora,
        lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, dtype=args.dtype, num_heads=args.num_heads,
        text_length=args.text_length,
    )  # fmt: skip
    print(json.dumps({"output": str(out), "recipe": args.recipe, "seconds": round(time.perf_counter() - started, 1)}, indent=2))
    return 0


def _read_image(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise ValueError(f"no such image: {path!r}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path!r}: {error}") from None


def _add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `generate` and `eval` share: which weights, which pipeline, how many steps, which window, how guided."""
    parser.add_argument("--model", default="weights/avgen-tiny", help="pipeline folder (default weights/avgen-tiny)")
    parser.add_argument("--pipeline", choices=("rolling", "mutual"), default="rolling", help="Rolling Forcing or chunk-wise Mutual Forcing")
    parser.add_argument("--steps", type=_positive_int, default=None, help="denoising steps per chunk (default: the folder's, else 4)")
    parser.add_argument("--window", type=_positive_int, default=None, help="rolling window in chunks (default: the folder's, its dub_window when voicing --video, else --steps)")
    parser.add_argument(
        "--guidance", type=float, default=None,
        help="classifier-free guidance by the prompt (> 1 turns it on, 1: off; default: the folder's)",
    )  # fmt: skip
    parser.add_argument(
        "--audio-guidance", type=float, default=None,
        help="push the mouth further the way the voice moves it (1: off; default: the folder's)",
    )  # fmt: skip


def _add_runtime_arguments(parser: argparse.ArgumentParser, compile: bool = True) -> None:
    """How a loaded pipeline runs: the video codec's dtype, and (optionally) compilation."""
    parser.add_argument(
        "--vae-dtype", default="auto",
        help="dtype the video codec runs in: auto (bf16 where the hardware computes it natively, else fp32), fp32 or bf16",
    )  # fmt: skip
    if compile:
        parser.add_argument(
            "--compile", action="store_true",
            help="compile the transformer's per-token stages with torch.compile (slower first chunk; eager with a warning where unavailable)",
        )  # fmt: skip


def _add_core_arguments(parser: argparse.ArgumentParser, default: int | None) -> None:
    """How a stream uses the CPU: its cores, and whether frames decode on a thread of their own."""
    parser.add_argument(
        "--threads", type=_positive_int, default=default,
        help=f"CPU cores (default {default or 'all'}); from 2, half denoise and half decode frames ahead (--no-decode-ahead: all do both in turn)",
    )  # fmt: skip
    parser.add_argument(
        "--no-decode-ahead", dest="decode_ahead", action="store_false",
        help="decode each chunk's frames after it on the same threads, not on a thread of their own while the next chunk is denoised",
    )  # fmt: skip


def _prepare(pipe, args: argparse.Namespace) -> None:
    """Apply `_add_runtime_arguments`' and `_add_core_arguments`' options to a loaded pipeline."""
    import torch

    from avgen.codecs.precision import cast_codec, codec_dtype

    cast_codec(pipe.vae, codec_dtype(args.vae_dtype, pipe.device))
    if getattr(args, "compile", False):
        pipe.transformer.compile()
    if hasattr(args, "decode_ahead"):
        # torch's thread count is one setting for every thread: decoding ahead, each side gets half.
        cores = args.threads or torch.get_num_threads()
        ahead = args.decode_ahead and cores >= 2 and pipe.device.type == "cpu"
        torch.set_num_threads(cores // 2 if ahead else cores)
        if ahead:
            pipe.enable_decode_ahead()


def build_parser() -> argparse.ArgumentParser:
    from avgen.world import VOCABULARIES

    parser = _Parser(prog="avgen", description="Streaming audio-video generation: the avgen toolbox.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    make = commands.add_parser("generate", help="generate a talking character with sound to an mp4")
    make.add_argument("prompt", help="what to generate, e.g. 'A red round face with glasses talks in a deep voice ...'")
    make.add_argument("--seconds", type=_seconds, default=None, help="length (default: the folder's frame count, else 10)")
    _add_sampler_arguments(make)
    make.add_argument("--seed", type=int, default=0, help="noise seed")
    make.add_argument("--height", type=_positive_int, default=None, help="frame height in pixels (default: the folder's)")
    make.add_argument("--width", type=_positive_int, default=None, help="frame width in pixels (default: the folder's)")
    make.add_argument("--image", help="first frame / reference character (RGB, any size: resized and centre-cropped)")
    make.add_argument("--video", help="a video to voice (dubbing): shown as it is, the model makes its sound; length: the video's")
    make.add_argument("-o", "--output", required=True, help="output mp4 (H.264 + AAC)")
    _add_core_arguments(make, default=None)
    _add_runtime_arguments(make)
    make.set_defaults(run=generate)

    from avgen.convert.recipes import RECIPES

    from avgen.data.footage_cli import add_footage_parser

    add_footage_parser(commands)

    importer = commands.add_parser("convert", help="turn a Self-Forcing-family checkpoint into a pipeline folder")
    importer.add_argument("checkpoint", help="the generator checkpoint (.pt/.pth or .safetensors)")
    importer.add_argument("--base", required=True, help="Wan2.1-T2V-1.3B folder (diffusers or original layout): VAE, umT5, tokenizer")
    importer.add_argument("--recipe", required=True, help=f"the checkpoint's family: {', '.join(RECIPES)}")
    importer.add_argument("-o", "--output", required=True, help="pipeline folder to write (new or empty)")
    importer.add_argument("--weights", choices=("generator_ema", "generator"), default=None, help="container (default: the recipe's)")
    importer.add_argument("--lora", help="LoRA file to merge (LongLive)")
    importer.add_argument("--lora-rank", type=_positive_int, default=None, help="LoRA rank (default: the file's, else the recipe's)")
    importer.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the file's, else the recipe's)")
    importer.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="transformer and text encoder weights")
    importer.add_argument("--num-heads", type=_positive_int, default=None, help="attention heads (default: width / 128, as every Wan)")
    importer.add_argument("--text-length", type=_positive_int, default=512, help="prompt tokens (default 512, as Wan)")
    importer.set_defaults(run=convert)

    render = commands.add_parser("render-world", help="render a clip of the synthetic world to an mp4")
    render.add_argument("--seed", type=int, default=0, help="clip seed: picks the character, speech and events")
    render.add_argument("--seconds", type=_seconds, default=10.0, help="clip length (default 10)")
    render.add_argument("-o", "--output", required=True, help="output file (.mp4, or .ts for an MPEG-TS segment)")
    render.add_argument("--held-out", action="store_true", help="draw a held-out character (never in training)")
    for name, vocabulary in VOCABULARIES.items():
        flag = "--" + name.replace("_", "-")
        render.add_argument(flag, dest=name, metavar=name.upper(), help=f"fix the {name.replace('_', ' ')}: {', '.join(vocabulary)}")
    render.add_argument("--events", type=_events, default=None, help="comma list of jump, chime, or none (default: drawn from the seed)")
    render.add_argument("--fps", type=_positive_int, default=16, help="frames per second (default 16)")
    render.add_argument("--size", type=_positive_int, default=64, help="frame height and width in pixels (default 64)")
    render.set_defaults(run=render_world)

    evaluate = commands.add_parser("eval-media", help="print sync, drift and attribute metrics of a media file as JSON")
    evaluate.add_argument("path", help="mp4 or ts file with video and audio")
    evaluate.add_argument("--prompt", help="prompt to judge adherence against (default: the file's embedded prompt)")
    evaluate.set_defaults(run=eval_media)

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    benches = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    world = benches.add_parser("world", help="check the metrics against the world's ground truth")
    world.add_argument("--clips", type=_positive_int, default=200, help="rendered clips to check (default 200)")
    world.add_argument("--seconds", type=_seconds, default=10.0, help="length of each clip (default 10)")
    world.add_argument("--split", choices=("train", "held-out"), default="held-out", help="characters to draw")
    world.add_argument("--seed", type=int, default=0, help="first clip seed")
    world.add_argument("--json", action="store_true", help="print JSON instead of a table")
    world.set_defaults(run=bench_world)

    model = benches.add_parser("model", help="speed, memory and exactness of chunk-by-chunk generation")
    model.add_argument("--preset", default="tiny", help="model size: tiny or wan-1.3b (default tiny)")
    model.add_argument("--chunks", type=_positive_int, default=100, help="chunks to generate (default 100)")
    model.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    model.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="weights and activations")
    model.add_argument("--backend", choices=("sdpa", "flex", "flash", "xformers"), default="sdpa", help="attention kernel")
    model.add_argument("--sink", type=int, default=1, help="sink chunks in the KV cache (default 1)")
    model.add_argument("--window", type=int, default=4, help="ring-buffer chunks in the KV cache (default 4)")
    model.add_argument("--json", action="store_true", help="print JSON instead of a table")
    model.set_defaults(run=bench_model)

    stream = benches.add_parser("stream", help="memory and time per chunk over a long streamed generation")
    stream.add_argument("--model", help="pipeline folder (default: untrained components of the tiny sizes)")
    stream.add_argument("--pipeline", choices=("rolling", "mutual"), default="rolling", help="which pipeline")
    stream.add_argument("--minutes", type=_seconds, default=10.0, help="minutes of audio+video to stream (default 10)")
    stream.add_argument("--steps", type=_positive_int, default=None, help="denoising steps per chunk (default: the folder's, else 4)")
    stream.add_argument("--height", type=_positive_int, default=None, help="frame height in pixels (default: the folder's)")
    stream.add_argument("--width", type=_positive_int, default=None, help="frame width in pixels (default: the folder's)")
    stream.add_argument("--audio-guidance", type=float, default=None, help="audio guidance scale (1: off; default: the folder's)")
    stream.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (> 1 turns it on; default: the folder's)")
    _add_core_arguments(stream, default=2)
    _add_runtime_arguments(stream)
    stream.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stream.set_defaults(run=bench_stream)

    official = benches.add_parser("official", help="the official samplers' schedules on the official-tiny fixture, ms per latent frame")
    official.add_argument("--fixture", default="../shared/fixtures/official-tiny", help="the fixture folder")
    official.add_argument("--frames", type=_positive_int, choices=(21, 60), default=None, help="latent frames (default: both)")
    official.add_argument("--runs", type=_positive_int, default=9, help="runs per schedule; the median is reported (default 9)")
    official.add_argument("--threads", type=_positive_int, default=2, help="torch CPU threads (default 2)")
    official.add_argument("--long", type=_positive_int, default=None, metavar="N",
                          help="instead: stream N times the training length (decoded, prompt changed half-way) and report memory")
    official.add_argument("--recipe", default="rolling-forcing", help="with --long: the schedule (default rolling-forcing)")
    official.add_argument("--compile", action="store_true", help="also time each schedule with the transformer compiled")
    official.add_argument("--json", action="store_true", help="print JSON instead of a table")
    official.set_defaults(run=bench_official)

    evaluation = commands.add_parser(
        "eval", help="evaluate a model on held-out characters (sync, adherence, drift); `eval codecs` for the codecs"
    )
    _add_sampler_arguments(evaluation)
    evaluation.add_argument("--clips", type=_positive_int, default=50, help="held-out prompts (default 50)")
    evaluation.add_argument("--seconds", type=_seconds, default=20.0, help="length of each generation (default 20)")
    evaluation.add_argument("--seed", type=int, default=0, help="first held-out prompt: seeds SEED..SEED+CLIPS-1 (default 0)")
    evaluation.add_argument(
        "--phrasing", choices=("world", "paraphrases"), default="world",
        help="ask in the world's phrasings, or in held-out paraphrases no training prompt used (default world)",
    )  # fmt: skip
    evaluation.add_argument(
        "--dub", action="store_true",
        help="give each held-out clip's own video and score the model's voice against its mouth (models trained to dub)",
    )  # fmt: skip
    evaluation.add_argument(
        "--drive", action="store_true",
        help="give each held-out clip's own voice and score the model's mouth against it (models trained on given audio)",
    )  # fmt: skip
    evaluation.add_argument(
        "--source", choices=("generated", "world", "codecs"), default="generated",
        help="score the model's generations, or the held-out clips themselves as the world renders them or through "
        "the model's codecs (the ceilings its figures are read against; default generated)",
    )  # fmt: skip
    evaluation.add_argument("--sink-chunks", type=int, default=1, help="attention-sink chunks in the KV cache (default 1)")
    evaluation.add_argument("--cache-chunks", type=_positive_int, default=4, help="ring-buffer chunks in the KV cache (default 4)")
    evaluation.add_argument("--threads", type=_positive_int, default=2, help="torch CPU threads per worker (default 2)")
    evaluation.add_argument("--workers", type=_positive_int, default=1, help="processes sharing the clips out (default 1)")
    _add_runtime_arguments(evaluation, compile=False)
    evaluation.add_argument("--json", action="store_true", help="print JSON (with one row per clip) instead of a table")
    evaluation.set_defaults(run=eval_model)
    evaluations = evaluation.add_subparsers(dest="evaluation", parser_class=_Parser)
    codecs = evaluations.add_parser("codecs", help="codec reconstruction and streaming speed on held-out characters")
    codecs.add_argument("--model", default="weights/avgen-tiny", help="model folder with vae/ and audio_codec/")
    codecs.add_argument("--clips", type=_positive_int, default=50, help="held-out clips (default 50)")
    codecs.add_argument("--latent-frames", type=_positive_int, default=41, help="latent frames per clip (41: 10 s)")
    _add_runtime_arguments(codecs, compile=False)
    codecs.add_argument(
        "--reference",
        help="another model folder: also report how far the latents moved from its codecs' (a generator trained on those)",
    )
    codecs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    codecs.set_defaults(run=eval_codecs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from avgen.media import MediaError

    try:
        return args.run(args)
    except (ValueError, MediaError, OSError) as error:
        print(f"avgen {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"avgen {args.command}: interrupted", file=sys.stderr)
        return 130
