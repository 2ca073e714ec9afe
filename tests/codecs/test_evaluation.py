import json
import os
import subprocess
import sys

import pytest
import torch

from avgen.codecs.evaluation import evaluate_codecs, frames_to_video, video_to_frames
from avgen.codecs.presets import tiny_audio_codec, tiny_video_codec


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("avgen-untrained")
    torch.manual_seed(0)
    tiny_video_codec().save_pretrained(folder / "vae")
    tiny_audio_codec().save_pretrained(folder / "audio_codec")
    return folder


def test_frames_convert_losslessly():
    frames = torch.randint(0, 256, (5, 8, 8, 3), dtype=torch.uint8).numpy()
    assert (video_to_frames(frames_to_video(frames)) == frames).all()


def test_untrained_codecs_are_measured_and_fail_the_bars(untrained):
    figures = evaluate_codecs(untrained, clips=2, latent_frames=3)
    assert figures["frames_per_clip"] == 9
    assert figures["video_psnr_db_mean"] < 20  # random weights reconstruct nothing
    assert figures["streaming_decode_realtime_factor_one_thread"] > 0
    by_name = figures["attribute_readback_by_name"]
    assert set(by_name) == {"shape", "face_colour", "background"}
    assert figures["attribute_readback_video_roundtrip"] <= min(by_name.values())
    assert figures["video_codec_megabytes"] > 0 and figures["audio_codec_megabytes"] > 0


def test_cli_reports_json_and_explains_a_missing_model(untrained, tmp_path):
    command = [sys.executable, "-m", "avgen", "eval", "codecs", "--clips", "1", "--latent-frames", "2", "--json"]
    result = subprocess.run([*command, "--model", str(untrained)], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert "video_psnr_db_mean" in json.loads(result.stdout)
    missing = subprocess.run([*command, "--model", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "holds no codec; train one" in missing.stderr
