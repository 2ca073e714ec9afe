import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from avgen.data.footage import FootageClip, FootageSpec, decode_clip, scan_footage
from avgen.data.footage_cli import add_footage_parser
from avgen.data.footage_dataset import FootageDataset
from avgen.media import MediaError, ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
TONE = 0.25  # amplitude of the stereo tone, the same in both channels
FLASH = 1.0  # seconds into flash.webm where the picture flashes white and a tone burst sounds


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def tone(channels: int, rate: int) -> list[str]:
    wave = "|".join([f"{TONE}*sin(2*PI*440*t)"] * channels)
    return ["-f", "lavfi", "-i", f"aevalsrc='{wave}':s={rate}"]


PATTERN = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30"]
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@pytest.fixture(scope="session")
def footage(tmp_path_factory) -> Path:
    """A footage folder: two usable files (one long enough for two clips) and four that are not."""
    folder = tmp_path_factory.mktemp("footage")
    (folder / "more").mkdir()
    # 30 fps 160x120 stereo 44.1 kHz, 4.5 s: two clips of 29 frames at 16 fps, and a tail.
    ffmpeg(*PATTERN, *tone(2, 44100), "-t", "4.5", *H264, "-c:a", "aac", str(folder / "talk.mp4"))
    # A white flash and a tone burst at FLASH seconds, in VP9 + Opus: a 48 kHz mono webm.
    flash = f"nullsrc=size=64x48:rate=30,geq=lum='if(between(T,{FLASH},{FLASH}+0.0999),235,16)':cb=128:cr=128"
    burst = f"aevalsrc='if(between(t,{FLASH},{FLASH}+0.1),0.5*sin(2*PI*440*t),0)':s=48000"
    ffmpeg("-f", "lavfi", "-i", flash, "-f", "lavfi", "-i", burst, "-t", "3",
           "-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus", str(folder / "more" / "flash.webm"))  # fmt: skip
    (folder / "more" / "flash.txt").write_text("a white flash with a beep\n")
    (folder / "talk.txt").write_text("not used: metadata.jsonl wins")
    ffmpeg(*PATTERN, "-t", "2.5", *H264, "-an", str(folder / "silent.mp4"))
    ffmpeg(*PATTERN, *tone(1, 16000), "-t", "1", *H264, "-c:a", "aac", str(folder / "short.mp4"))
    ffmpeg(*PATTERN, *tone(1, 16000), "-t", "2.5", *H264, "-c:a", "aac", str(folder / "uncaptioned.mkv"))
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "notes.md").write_text("not footage: ignored")
    captions = {"talk.mp4": "a test pattern hums", "silent.mp4": "a silent pattern", "short.mp4": "too short", "corrupt.mp4": "broken"}
    (folder / "metadata.jsonl").write_text("".join(json.dumps({"file_name": k, "text": v}) + "\n" for k, v in captions.items()))
    return folder


@pytest.fixture(scope="session")
def index(footage):
    return scan_footage(footage)


def check(*argv: str) -> int:
    """`avgen footage check ARGV` through a throwaway parser."""
    parser = argparse.ArgumentParser(prog="avgen")
    add_footage_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["footage", "check", *argv])
    return args.run(args)


def test_scan_lists_usable_files_and_every_skip_with_its_reason(index):
    assert [(f.path, f.caption, f.clips) for f in index.files] == [
        ("more/flash.webm", "a white flash with a beep", 1),
        ("talk.mp4", "a test pattern hums", 2),
    ]
    reasons = {skipped.path: skipped.reason for skipped in index.skipped}
    assert set(reasons) == {"corrupt.mp4", "silent.mp4", "short.mp4", "uncaptioned.mkv"}
    assert "not a media file" in reasons["corrupt.mp4"]
    assert reasons["silent.mp4"].startswith("no audio stream")
    assert reasons["short.mp4"].startswith("shorter than one clip (1.00 s < 1.81 s)")
    assert reasons["uncaptioned.mkv"] == "no caption: add it to metadata.jsonl or to uncaptioned.txt"
    assert len(index.clips) == 3 and index.seconds == pytest.approx(3 * 29 / 16)


def test_long_file_is_cut_into_consecutive_clips_and_the_tail_dropped(index):
    starts = [clip.start_seconds for clip in index.clips if clip.file.path == "talk.mp4"]
    assert starts == [0.0, 29 / 16]  # 4.5 s holds 72 frames at 16 fps: two clips of 29, 14 left over


def test_clips_come_out_at_the_models_fps_size_rate_and_channels(index):
    item = FootageDataset(index)[1]  # talk.mp4: 30 fps 160x120, stereo 44.1 kHz
    assert item["video"].shape == (3, 29, 64, 64) and item["video"].dtype == torch.float32
    assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0 and item["video"].std() > 0.1
    assert item["audio"].shape == (1, 29 * 1000) and item["audio"].dtype == torch.float32
    audio = item["audio"][0].numpy()
    assert np.abs(audio).max() == pytest.approx(TONE, rel=0.1)  # mean downmix: equal channels keep their level
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 16000 / len(audio) == pytest.approx(440, abs=2)  # resampled, not reinterpreted
    assert (item["prompt"], item["file"], item["start_seconds"]) == ("a test pattern hums", "talk.mp4", 0.0)


@pytest.mark.parametrize("start", [0.0, 0.5])
def test_picture_and_sound_stay_in_step_from_any_start(index, start):
    clip = FootageClip(index.files[0], start)  # flash.webm
    frames, audio = decode_clip(index.folder, clip, index.spec)
    flashed = np.nonzero(frames.mean(axis=(1, 2, 3)) > 128)[0]
    sounded = np.nonzero(np.abs(audio[0]) > 0.05)[0]
    assert flashed[0] == round((FLASH - start) * 16)
    assert abs(sounded[0] - (FLASH - start) * 16000) < 0.005 * 16000  # Opus's delay is a few ms


def test_a_video_only_model_takes_silent_files_and_yields_no_audio(footage):
    index = scan_footage(footage, FootageSpec(sample_rate=None))
    assert "silent.mp4" in [f.path for f in index.files]
    silent = next(i for i, clip in enumerate(index.clips) if clip.file.path == "silent.mp4")
    item = FootageDataset(index)[silent]
    assert "audio" not in item and item["video"].shape == (3, 29, 64, 64)


def test_a_clip_past_the_end_of_its_file_is_an_error_naming_the_file(index):
    clip = FootageClip(index.files[1], 4.0)  # talk.mp4 ends at 4.5 s
    with pytest.raises(MediaError, match="'talk.mp4' decoded to 8 of 29 frames from 4.00 s"):
        decode_clip(index.folder, clip, index.spec)


def test_spec_of_a_model_folder(tmp_path):
    assert FootageSpec.from_model_folder(ROOT / "weights" / "avgen-tiny") == FootageSpec()
    # A converted video-only folder: no audio codec, its own size and training length.
    (tmp_path / "vae").mkdir()
    shutil.copy(ROOT / "weights" / "avgen-tiny" / "vae" / "config.json", tmp_path / "vae")
    index = {"audio_codec": [None, None], "fps": 16, "height": 480, "width": 832, "num_frames": 81}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    spec = FootageSpec.from_model_folder(tmp_path)
    assert (spec.sample_rate, spec.height, spec.width, spec.latent_frames, spec.clip_frames) == (None, 480, 832, 21, 81)
    assert FootageSpec.from_model_folder(tmp_path, latent_frames=3).clip_frames == 9


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"height": 60}, "height must be a positive multiple of 8"),
        ({"sample_rate": 44100}, "sample_rate must be a positive multiple of fps"),
        ({"latent_frames": 0}, "latent_frames must be >= 1"),
    ],
)
def test_spec_names_the_field_and_the_rule(fields, message):
    with pytest.raises(ValueError, match=message):
        FootageSpec(**fields)


def test_check_prints_what_a_training_run_would_use(footage, capsys):
    assert check(str(footage), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == 3 and report["seconds"] == pytest.approx(3 * 29 / 16)
    assert [f["file"] for f in report["files"]] == ["more/flash.webm", "talk.mp4"]
    assert {s["file"] for s in report["skipped"]} == {"corrupt.mp4", "silent.mp4", "short.mp4", "uncaptioned.mkv"}
    assert report["model"]["fps"] == 16 and report["model"]["clip_frames"] == 29

    assert check(str(footage), "--model-config", str(ROOT / "weights" / "avgen-tiny")) == 0
    table = capsys.readouterr().out
    assert "2 used, 4 skipped" in table and "corrupt.mp4: not a media file" in table


def test_check_of_a_folder_with_nothing_usable_exits_1(tmp_path, capsys):
    ffmpeg(*PATTERN, "-t", "0.5", *H264, str(tmp_path / "clip.mp4"))
    assert check(str(tmp_path), "--json") == 1
    assert json.loads(capsys.readouterr().out)["skipped"][0]["reason"].startswith("no caption")
    with pytest.raises(ValueError, match="no usable clip"):
        FootageDataset.from_folder(tmp_path)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    "files, argv, message",
    [
        ({}, [], "is empty: put mp4, mov, mkv, webm files in it"),
        ({"a.txt": "caption", "b.png": "x"}, [], "has no video files"),
        ({"a.mp4": "", "metadata.jsonl": '{"file_name": "gone.mp4", "text": "x"}\n'}, [], "names 'gone.mp4', which is not in"),
        ({"a.mp4": "", "metadata.jsonl": "{not json\n"}, [], "line 1 is not JSON"),
        ({"a.mp4": ""}, ["--model-config", "FOLDER"], "is not a model folder: it has no vae/config.json"),
        ({"a.mp4": ""}, ["--latent-frames", "0"], "--latent-frames must be >= 1"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, files, argv, message):
    folder = write(tmp_path / "footage", files) if files else (tmp_path / "footage")
    folder.mkdir(exist_ok=True)
    with pytest.raises(ValueError, match=message) as error:
        check(str(folder), *[str(folder) if arg == "FOLDER" else arg for arg in argv])
    assert "\n" not in str(error.value)


def test_surround_sound_is_read_as_its_channels_and_downmixed_for_a_mono_codec(tmp_path):
    """ffmpeg names 5.1 by its layout, not a count: once read as a file without sound."""
    from avgen.media import layout_channels, probe

    path = tmp_path / "surround.mp4"
    ffmpeg(*PATTERN, *tone(6, 48000), "-t", "2.5", *H264, "-c:a", "aac", "-channel_layout", "5.1", str(path))
    (tmp_path / "surround.txt").write_text("a pattern in surround sound")
    assert probe(path).channels == 6
    index = scan_footage(tmp_path)
    assert not index.skipped and index.files[0].channels == 6
    _, audio = decode_clip(tmp_path, index.clips[0], index.spec)
    assert audio.shape == (1, 29 * 1000) and np.abs(audio).max() == pytest.approx(TONE, rel=0.1)
    assert [layout_channels(name) for name in ("mono", "stereo", "5.1(side)", "7.1", "quad", "6 channels", "2.1")] == [1, 2, 6, 8, 4, 6, 3]
    assert layout_channels("fltp") is None
