"""A run killed mid-way resumes from its newest checkpoint and ends exactly where an unbroken run ends."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from avgen.training.trainer import Trainer

from .conftest import overrides

ROOT = Path(__file__).resolve().parents[2]
EVERY = 3


def command(config, *extra):
    return [sys.executable, str(ROOT / "train" / "pretrain.py"), "--no-progress", *overrides(config), *extra]


def curve(config) -> list[float]:
    return [json.loads(line)["loss"] for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]


def test_killed_run_resumes_and_loses_at_most_one_interval(small_config, tmp_path):
    changes = dict(steps=24, checkpoint_every=EVERY, learning_rate=1e-3)
    config = small_config("pretrain", output_dir=str(tmp_path / "killed"), **changes)
    run = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = Path(config.output_dir) / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (Path(config.output_dir) / "checkpoints" / f"step-{2 * EVERY}").is_dir():
        assert run.poll() is None, run.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be killed"
    run.send_signal(signal.SIGKILL)
    run.wait()
    logged = len(metrics.read_text().splitlines())
    assert logged < config.steps

    resumed = subprocess.run(command(config, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = int(resumed.stdout.split("at step ")[1].split()[0])
    assert start >= 2 * EVERY and logged - start <= EVERY  # at most one checkpoint interval redone

    reference = small_config("pretrain", output_dir=str(tmp_path / "unbroken"), **changes)
    assert subprocess.run(command(reference), capture_output=True).returncode == 0
    assert curve(config) == curve(reference)
    kept = sorted(p.name for p in (Path(config.output_dir) / "checkpoints").iterdir())
    assert kept == ["step-18", "step-21", "step-24"]  # keep_checkpoints = 3, no partial folder left


def test_stop_at_splits_a_schedule_into_parts_that_match_one_run(small_config, tmp_path):
    def metrics(config) -> list[dict]:
        return [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]

    changes = dict(steps=6, checkpoint_every=4, learning_rate=1e-3, warmup_steps=2)
    first = small_config("pretrain", output_dir=str(tmp_path / "parts"), stop_at=3, **changes)
    assert Trainer(first, progress=False).run().name == "step-3"  # a checkpoint at the stop, off the interval
    rest = small_config("pretrain", output_dir=str(tmp_path / "parts"), **changes)
    assert Trainer(rest, resume=True, progress=False).run().name == "step-6"

    whole = small_config("pretrain", output_dir=str(tmp_path / "whole"), **changes)
    Trainer(whole, progress=False).run()
    parts, reference = metrics(rest), metrics(whole)
    assert [row["lr"] for row in parts] == [row["lr"] for row in reference]  # the 6-step cosine throughout
    assert [row["loss"] for row in parts] == [row["loss"] for row in reference]
