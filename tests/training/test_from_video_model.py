"""Mutual Forcing's recipe on footage, from a converted video model (train/from_video_model.sh):
the official-tiny fixture's checkpoint converted, a new audio tower trained alone, coupling with
the video tower frozen, Mutual Forcing and rolling self-distillation, export, generation with
both pipelines. Each stage runs the shipped config of train/configs/from_video_model/, shortened."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avgen import MutualForcingPipeline, RollingForcingPipeline
from avgen.convert.pipeline_folder import convert_checkpoint
from avgen.convert.recipes import recipe
from avgen.convert.tiny_base import tiny_wan
from avgen.media import write_mp4
from avgen.text import SentenceTextEncoder
from avgen.training.entry import main
from avgen.training.export import export_pipeline
from avgen.training.generator import Generator
from avgen.world import WorldConfig, sample_clip

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "train" / "configs" / "from_video_model"
SCRIPTS = {"audio_tower": "pretrain", "couple": "couple", "mutual_forcing": "mutual_forcing", "rolling": "rolling"}
# Clips of 3 chunks of 3 latent frames (33 frames, 2.1 s) and a rolling window of 2: the configs'
# 5 chunks and 4 steps cost more encoding and rollout than a test needs.
SHORT = ["steps=2", "batch_size=2", "clip_chunks=3", "few_steps=2", "warmup_steps=1", "threads=1"]


def video_tower(folder: Path) -> dict[str, torch.Tensor]:
    return Generator.from_folder(folder, new_text_encoder="sentence").transformer.video.state_dict()


@pytest.fixture(scope="module")
def runs(official_tiny, codecs, tmp_path_factory) -> Path:
    """The converted fixture model, a codecs folder (its Wan VAE + an audio codec) and a footage folder
    of world clips re-encoded as plain mp4 with a caption beside each, and one corrupt file."""
    root = tmp_path_factory.mktemp("from-video-model")
    base = tiny_wan().save(root / "wan-base")
    convert_checkpoint(official_tiny / "tiny_self_forcing_format.pt", base, recipe("rolling-forcing"), root / "converted",
                       dtype="fp32", num_heads=2)  # fmt: skip
    (root / "codecs").mkdir()
    (root / "codecs" / "vae").symlink_to(root / "converted" / "vae")
    (root / "codecs" / "audio_codec").symlink_to(codecs / "audio_codec")
    footage = root / "footage"
    footage.mkdir()
    world = WorldConfig()
    for seed in (0, 1):
        clip = sample_clip(seed, config=world)
        rendered = clip.render(0, 40)
        write_mp4(footage / f"world-{seed}.mp4", rendered.frames, rendered.audio, world.fps, world.sample_rate)
        (footage / f"world-{seed}.txt").write_text(clip.prompt)
    (footage / "broken.mp4").write_bytes(b"not a video")
    (footage / "broken.txt").write_text("a broken file")
    return root


def run_stage(stage: str, data: Path, codecs: Path, init: Path, out: Path, *changes: str) -> Path:
    """The stage's script, as train/from_video_model.sh runs it (--resume), shortened by SHORT."""
    settings = [f"data={data}", f"codecs={codecs}", f"cache_dir={out.parent / 'cache'}", f"init={init}", f"output_dir={out}",
                *SHORT, *changes]  # fmt: skip
    argv = ["--config", str(CONFIGS / f"{stage}.yaml"), "--no-progress", "--resume"]
    main(SCRIPTS[stage], "", argv + [arg for setting in settings for arg in ("--set", setting)])
    return out


def train(runs: Path, stage: str, init: Path, *changes: str) -> Path:
    return run_stage(stage, runs / "footage", runs / "codecs", init, runs / stage, *changes)


def test_the_recipe_from_a_converted_video_model_runs_resumes_exports_and_generates(runs, capsys):
    converted = video_tower(runs / "converted")

    # Stage 1: a new audio tower (and text encoder) alone; the video tower is untouched.
    stage1 = train(runs, "audio_tower", runs / "converted")
    assert "UMT5EncoderModel text encoder is replaced by a new 'sentence' one" in capsys.readouterr().out
    generator = Generator.from_folder(stage1 / "checkpoints" / "step-2")
    assert generator.transformer.modalities == ("video", "audio") and isinstance(generator.text_encoder, SentenceTextEncoder)
    assert generator.transformer.config.audio_dim == 96 and generator.transformer.config.num_layers == 2
    assert all(torch.equal(tensor, converted[name]) for name, tensor in generator.transformer.video.state_dict().items())
    records = [json.loads(line) for line in (stage1 / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [1, 2]

    # Stage 2 with the video tower frozen: still the converted weights; fusion has learnt.
    stage2 = train(runs, "couple", stage1)
    coupled = Generator.from_folder(stage2 / "checkpoints" / "step-2").transformer
    assert all(torch.equal(tensor, converted[name]) for name, tensor in coupled.video.state_dict().items())
    assert coupled.fusion_blocks[0].video_from_audio.attn.to_out[0].weight.abs().max() > 0
    assert coupled.config.audio_conditioning

    # Stage 3 stopped after one step (as a killed run leaves its last checkpoint), then resumed.
    train(runs, "mutual_forcing", stage2, "stop_at=1")
    stage3 = train(runs, "mutual_forcing", stage2)
    assert "resuming from" in capsys.readouterr().out
    assert len((stage3 / "metrics.jsonl").read_text().splitlines()) == 2
    moved = Generator.from_folder(stage3 / "checkpoints" / "step-2").transformer.video.state_dict()
    assert not all(torch.equal(tensor, converted[name]) for name, tensor in moved.items())  # a tenth of the rate, not frozen

    stage4 = train(runs, "rolling", stage3)
    model = export_pipeline(stage4, runs / "codecs", runs / "model")
    for pipeline in (RollingForcingPipeline, MutualForcingPipeline):
        pipe = pipeline.from_pretrained(model)
        pipe.set_progress_bar_config(disable=True)
        out = pipe("A blue diamond face talks on a mint background.", seconds=1.0, generator=torch.Generator().manual_seed(0))
        assert out.frames.shape == (1, 16, 64, 64, 3) and out.audio.shape[0] == 1
        assert np.isfinite(out.audio).all() and out.frames.std() > 0


@pytest.mark.parametrize(
    "files, changes, message",
    [
        ({}, [], "is empty: put mp4, mov, mkv, webm files in it"),
        ({"a.txt": "caption", "b.png": "x"}, [], "has no video files"),
        ({"a.mp4": "", "metadata.jsonl": '{"file_name": "gone.mp4", "text": "x"}\n'}, [], "names 'gone.mp4', which is not in"),
        (None, ["codecs=TINY"], "give 8 video latent channels, the model takes 16"),
    ],
)
def test_a_stage_given_bad_footage_or_codecs_is_one_line_and_exit_2(runs, codecs, tmp_path, capsys, files, changes, message):
    folder = runs / "footage" if files is None else tmp_path / "footage"
    folder.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    changes = [change.replace("TINY", str(codecs)) for change in changes]
    with pytest.raises(SystemExit) as stopped:
        run_stage("audio_tower", folder, runs / "codecs", runs / "converted", tmp_path / "run", *changes)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(lines) == 1 and message in lines[0], lines
