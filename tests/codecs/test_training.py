import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def train(tmp_path, *args):
    command = [sys.executable, str(ROOT / "train" / "codecs.py"), "--codec", "audio", "--clips", "4", "--batch-size", "2",
               "--checkpoint-every", "2", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


def latents_mean(folder: Path) -> list[float]:
    return json.loads((folder / "config.json").read_text())["latents_mean"]


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


def test_decoder_fine_tuning_keeps_the_latents(tmp_path):
    """--freeze-encoder: the encoder and the latent statistics a generator was trained on stay as they were."""
    from safetensors.torch import load_file

    assert train(tmp_path / "base", "--steps", "1").returncode == 0
    base = tmp_path / "base" / "audio_codec"
    # Longer clips than the base's: re-measured statistics would differ, the kept ones do not.
    tuned = train(tmp_path / "tuned", "--steps", "2", "--init", str(base), "--freeze-encoder", "--envelope-weight", "1", "--clip-frames", "13")
    assert tuned.returncode == 0, tuned.stderr
    before = load_file(base / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "tuned" / "audio_codec" / "diffusion_pytorch_model.safetensors")
    encoder = [name for name in before if name.startswith("encoder.")]
    decoder = [name for name in before if name.startswith("decoder.")]
    assert encoder and all(before[name].equal(after[name]) for name in encoder)
    assert any(not before[name].equal(after[name]) for name in decoder)
    assert latents_mean(base) == latents_mean(tmp_path / "tuned" / "audio_codec")
    records = [json.loads(line) for line in (tmp_path / "tuned" / "checkpoints" / "audio" / "metrics.jsonl").read_text().splitlines()]
    assert all(record["envelope"] > 0 for record in records)


def test_freezing_the_encoder_needs_a_trained_codec(tmp_path):
    result = train(tmp_path, "--steps", "1", "--freeze-encoder")
    assert result.returncode != 0 and "--init" in result.stderr.splitlines()[-1]


def test_a_new_decoder_width_keeps_the_encoder_and_its_latents(tmp_path):
    from safetensors.torch import load_file

    video = ("--codec", "video", "--clip-frames", "5", "--steps", "1")
    assert train(tmp_path / "base", *video).returncode == 0
    base = tmp_path / "base" / "vae"
    wider = train(tmp_path / "wider", *video, "--init", str(base), "--freeze-encoder", "--decoder-width", "12")
    assert wider.returncode == 0, wider.stderr
    folder = tmp_path / "wider" / "vae"
    assert json.loads((folder / "config.json").read_text())["decoder_base_dim"] == 12
    before, after = load_file(base / "diffusion_pytorch_model.safetensors"), load_file(folder / "diffusion_pytorch_model.safetensors")
    encoder = [name for name in before if name.startswith(("encoder.", "quant_conv."))]
    assert encoder and all(before[name].equal(after[name]) for name in encoder)
    assert before["decoder.conv_in.weight"].shape != after["decoder.conv_in.weight"].shape
    assert latents_mean(base) == latents_mean(folder)


def test_a_new_decoder_width_needs_a_trained_video_codec(tmp_path):
    result = train(tmp_path, "--steps", "1", "--decoder-width", "12")
    assert result.returncode != 0 and "--codec video --init" in result.stderr.splitlines()[-1]
    result = train(tmp_path, "--codec", "video", "--init", str(tmp_path), "--decoder-width", "0")
    assert result.returncode != 0 and "at least 1" in result.stderr.splitlines()[-1]


def test_latent_channels_size_a_fresh_video_codec(tmp_path):
    result = train(tmp_path, "--codec", "video", "--clip-frames", "5", "--steps", "1", "--latent-channels", "4")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert config["z_dim"] == 4 and len(config["latents_mean"]) == len(config["latents_std"]) == 4


def test_latent_channels_need_a_fresh_video_codec(tmp_path):
    result = train(tmp_path, "--steps", "1", "--latent-channels", "16")
    assert result.returncode != 0 and "no --init" in result.stderr.splitlines()[-1]
    result = train(tmp_path, "--codec", "video", "--latent-channels", "0")
    assert result.returncode != 0 and "at least 1" in result.stderr.splitlines()[-1]
