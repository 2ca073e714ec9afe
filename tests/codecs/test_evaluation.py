import json
import os
import subprocess
import sys

import pytest
import torch

from avgen.codecs.evaluation import (
    evaluate_codecs,
    frames_to_video,
    latent_shift,
    outline_figures,
    outline_pixels,
    video_to_frames,
)
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


def square_on_flat_ground() -> torch.Tensor:
    """(1, 3, 2, 8, 8): a bright 4x4 square at rows and columns 2-5 on a dark ground, two frames."""
    video = torch.full((1, 3, 2, 8, 8), -0.5)
    video[..., 2:6, 2:6] = 0.5
    return video


def test_outline_pixels_are_where_colour_steps():
    outline = outline_pixels(square_on_flat_ground())[0]
    # a step against the upper or left neighbour: the square's top row and left column, the ground just below and right of it
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2, 2:6] = expected[6, 2:6] = expected[2:6, 2] = expected[2:6, 6] = True
    assert outline.equal(expected)


def test_outline_figures_split_the_error_by_where_it_lies():
    video = square_on_flat_ground()
    blurred_edges = video.clone()
    blurred_edges[:, :, :, 2, 2:6] = 0.0  # the square's top row halfway to the ground: error 0.25 on outline pixels only
    figures = outline_figures(blurred_edges, video)
    assert figures["outline_error_share"] == pytest.approx(1.0)
    assert figures["outline_fraction"] == pytest.approx(15 / 64)
    assert figures["psnr_outline"] == pytest.approx(10 * torch.log10(torch.tensor(4 / (0.25 * 4 / 15))).item(), rel=1e-5)
    assert figures["psnr_elsewhere"] > 100  # no error off the outlines


def test_latent_shift_is_the_difference_in_units_of_the_reference_variance():
    reference = torch.tensor([[-1.0, 1.0]])  # variance 2 (unbiased)
    assert latent_shift(reference, reference) == 0
    assert latent_shift(reference + 1, reference) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="the same shape"):
        latent_shift(torch.zeros(1, 4), reference)


def test_a_reference_model_reports_how_far_the_latents_moved(untrained, tmp_path):
    same = evaluate_codecs(untrained, clips=1, latent_frames=2, reference=untrained)
    assert same["video_latent_shift"] == 0 and same["audio_latent_shift"] == 0
    torch.manual_seed(1)  # another untrained encoder: unrelated latents
    tiny_video_codec().save_pretrained(tmp_path / "vae")
    tiny_audio_codec().save_pretrained(tmp_path / "audio_codec")
    other = evaluate_codecs(untrained, clips=1, latent_frames=2, reference=tmp_path)
    assert other["video_latent_shift"] > 0.1 and other["audio_latent_shift"] > 0.1
    assert other["reference"] == str(tmp_path)
    assert "video_latent_shift" not in evaluate_codecs(untrained, clips=1, latent_frames=2)


def test_a_checkpoint_without_latent_statistics_is_not_compared_with_a_normalised_reference(untrained, tmp_path):
    normalised = tiny_video_codec()
    normalised.register_to_config(latents_mean=[0.1] * 8, latents_std=[0.5] * 8)
    normalised.save_pretrained(tmp_path / "vae")
    tiny_audio_codec().save_pretrained(tmp_path / "audio_codec")
    with pytest.raises(ValueError, match="video codec has no latent mean/std"):
        evaluate_codecs(untrained, clips=1, latent_frames=2, reference=tmp_path)


def test_untrained_codecs_are_measured_and_fail_the_bars(untrained):
    figures = evaluate_codecs(untrained, clips=2, latent_frames=3)
    assert figures["frames_per_clip"] == 9
    assert figures["video_psnr_db_mean"] < 20  # random weights reconstruct nothing
    assert figures["streaming_decode_realtime_factor_one_thread"] > 0
    assert 0 < figures["video_outline_pixel_fraction"] < 1 and 0 < figures["video_outline_error_share"] <= 1
    assert figures["video_psnr_db_outline_mean"] < 20 and figures["video_psnr_db_elsewhere_mean"] < 20
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
