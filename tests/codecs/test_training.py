import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def train(tmp_path, *args):
    command = [sys.executable, str(ROOT / "train" / "codecs.py"), "--codec", "audio", "--clips", "4", "--batch-size", "2",
               "--checkpoint-every", "2", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


def test_codec_training_checkpoints_resumes_and_exports(tmp_path):
    first = train(tmp_path, "--steps", "2")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "checkpoints" / "audio" / "step-2" / "optimizer.pt").is_file()
    config = json.loads((tmp_path / "audio_codec" / "config.json").read_text())
    assert len(config["latents_mean"]) == 8 and all(s > 0 for s in config["latents_std"])

    metrics = tmp_path / "checkpoints" / "audio" / "metrics.jsonl"
    with metrics.open("a") as log:  # as if killed after logging step 3, before its checkpoint
        log.write(json.dumps({"step": 3, "loss": -1.0}) + "\n")
    resumed = train(tmp_path, "--steps", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr and "step 2" in resumed.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(0 <= r["loss"] < 1e3 for r in records)  # finite, and the killed run's step 3 is gone
