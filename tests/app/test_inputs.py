import numpy as np
import pytest
from PIL import Image

from avgen.app.config import default_modes
from avgen.app.inputs import check_seconds, check_seed, load_reference, parse_request

FRAME = (64, 64)


def parse(**changes):
    arguments = dict(prompt="A red round face.", image_path=None, seconds=4, until_stopped=False, mode="fast", seed=3)
    arguments.update(changes)
    return parse_request(**arguments, modes=default_modes(), max_seconds=60, frame_size=FRAME)


def test_a_good_request_passes_through():
    request = parse(prompt="  A red round face.  ", seconds="2.5", seed=7.0)
    assert (request.prompt, request.seconds, request.mode, request.seed, request.image) == ("A red round face.", 2.5, "fast", 7, None)
    assert parse(until_stopped=True, seconds=None).seconds is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"prompt": ""}, "the prompt is empty"),
        ({"prompt": "   "}, "the prompt is empty"),
        ({"seconds": 0}, "more than 0 and at most 60 seconds, got 0"),
        ({"seconds": -3}, "more than 0 and at most 60 seconds, got -3"),
        ({"seconds": 61}, "at most 60 seconds, got 61"),
        ({"seconds": float("nan")}, "at most 60 seconds"),
        ({"seconds": None}, "give a length in seconds"),
        ({"seconds": "ten"}, "length must be a number of seconds"),
        ({"seed": -1}, "seed must be a whole number from 0"),
        ({"seed": 1.5}, "seed must be a whole number from 0"),
        ({"seed": float("inf")}, "seed must be a whole number from 0"),
        ({"seed": 2**63}, "seed must be a whole number from 0"),
        ({"mode": "turbo"}, "unknown mode 'turbo': choose one of fast, quality"),
    ],
)
def test_mistakes_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse(**changes)
    assert "\n" not in str(caught.value)


def test_reference_is_cropped_and_downscaled_to_the_frame(tmp_path):
    picture = np.zeros((120, 200, 3), np.uint8)
    picture[:, 40:160] = (200, 30, 30)  # a red square in the middle of a black band
    Image.fromarray(picture).save(tmp_path / "wide.png")
    frame = load_reference(tmp_path / "wide.png", FRAME)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert np.abs(frame[8:-8, 8:-8].astype(int) - (200, 30, 30)).max() <= 2  # the centre is kept


def test_reference_with_alpha_or_grey_becomes_rgb(tmp_path):
    Image.new("RGBA", (64, 64), (10, 20, 30, 128)).save(tmp_path / "alpha.png")
    Image.new("L", (100, 100), 90).save(tmp_path / "grey.jpg")
    assert load_reference(tmp_path / "alpha.png", FRAME).shape == (64, 64, 3)
    assert load_reference(tmp_path / "grey.jpg", FRAME).shape == (64, 64, 3)


def test_bad_reference_files_are_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("RGB", (32, 80)).save(tmp_path / "narrow.png")
    with pytest.raises(ValueError, match="the reference file is not an image: upload a PNG or JPEG"):
        parse(image_path=str(tmp_path / "notes.png"))
    with pytest.raises(ValueError, match="the reference image is 32x80 pixels; it must be at least 64x64"):
        parse(image_path=str(tmp_path / "narrow.png"))


def test_checks_accept_their_edges():
    assert check_seconds(60, 60) == 60.0
    assert check_seed(None) == 0
    assert check_seed(2**63 - 1) == 2**63 - 1


def test_a_video_to_voice_sets_the_length_and_excludes_a_reference_image(tmp_path):
    request = parse(video_path=tmp_path / "clip.mp4", seconds=None)
    assert request.video == str(tmp_path / "clip.mp4") and request.seconds is None
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "ref.png")
    with pytest.raises(ValueError, match="give a reference image or a video to voice, not both"):
        parse(video_path=tmp_path / "clip.mp4", image_path=tmp_path / "ref.png")
