"""Footage latents: encoded once, resumed after a kill, shared between processes, broken clips skipped."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from avgen.codecs.audio import AudioCodec
from avgen.codecs.av import encode_clip
from avgen.codecs.video import VideoCodec
from avgen.data.footage import FootageSpec, scan_footage
from avgen.data.footage_dataset import FootageDataset
from avgen.media import ffmpeg_exe
from avgen.training.footage_latents import FootageCache, FootageLatents

# Clips of 2 latent frames (5 frames, 0.31 s at 16 fps): 1 s of footage holds 3 of them.
SPEC = FootageSpec(latent_frames=2)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(path: Path, seconds: float, hertz: int) -> None:
    """A 30 fps test pattern with a tone, its index at the front (faststart) as cameras write it."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-f", "lavfi", "-i", f"sine=frequency={hertz}:sample_rate=16000",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-movflags", "+faststart", str(path))  # fmt: skip


def captioned(folder: Path, captions: dict[str, str]) -> Path:
    (folder / "metadata.jsonl").write_text("".join(json.dumps({"file_name": k, "text": v}) + "\n" for k, v in captions.items()))
    return folder


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """Two files: talk.mp4 (1 s: 3 clips) and hum.mp4 (0.7 s: 2 clips)."""
    folder = tmp_path_factory.mktemp("footage")
    make_clip(folder / "talk.mp4", 1.0, 440)
    make_clip(folder / "hum.mp4", 0.7, 220)
    return captioned(folder, {"talk.mp4": "a pattern talks", "hum.mp4": "a pattern hums"})


@pytest.fixture
def encoded(monkeypatch) -> list[int]:
    """The batch sizes the video encoder is called with (audio-video and video-only alike)."""
    calls = []
    encode = VideoCodec.encode_latents

    def counting(self, video):
        calls.append(video.shape[0])
        return encode(self, video)

    monkeypatch.setattr(VideoCodec, "encode_latents", counting)
    return calls


def load(folder, codecs, cache_dir, spec=SPEC, **kwargs) -> FootageLatents:
    return FootageLatents.load_or_encode(scan_footage(folder, spec), codecs, cache_dir, progress=False, **kwargs)


def test_clips_are_encoded_once_and_then_read_back(footage, codecs, tmp_path, encoded):
    first = load(footage, codecs, tmp_path)
    assert sum(encoded) == 5 and first.summary.encoded == 5 and first.summary.skipped == ()
    assert first.video.shape == (5, 8, 2, 8, 8) and first.audio.shape == (5, 8, 16)  # 8 audio latents per latent frame
    assert first.prompts == ["a pattern hums"] * 2 + ["a pattern talks"] * 3
    batch = first.batch([0, 3], torch.device("cpu"))
    assert batch["video"].shape == (2, 8, 2, 8, 8) and batch["prompts"] == ["a pattern hums", "a pattern talks"]

    # The cached latents are what the codecs give for the clip as the footage dataset yields it.
    index = scan_footage(footage, SPEC)
    sample = FootageDataset(index)[3]
    video_codec = VideoCodec.from_pretrained(codecs / "vae").eval()
    audio_codec = AudioCodec.from_pretrained(codecs / "audio_codec").eval()
    video, audio = encode_clip(video_codec, audio_codec, sample["video"][None], sample["audio"][None], SPEC.fps, SPEC.sample_rate)
    torch.testing.assert_close(first.video[3], video[0])
    torch.testing.assert_close(first.audio[3], audio[0])

    encoded.clear()
    again = load(footage, codecs, tmp_path)
    assert encoded == [] and again.summary.encoded == 0
    assert torch.equal(again.video, first.video) and torch.equal(again.audio, first.audio)


def test_a_killed_run_resumes_with_the_missing_clip_only(footage, codecs, tmp_path, encoded):
    first = load(footage, codecs, tmp_path)
    cache = FootageCache(scan_footage(footage, SPEC), codecs, tmp_path)
    cache.paths[2].unlink()  # killed before clip 2 was renamed into place: its temporary file is left
    cache.paths[2].with_name(f".{cache.paths[2].name}.0123.partial").write_bytes(b"half a file")
    encoded.clear()
    resumed = load(footage, codecs, tmp_path)
    assert encoded == [1] and resumed.summary.encoded == 1
    torch.testing.assert_close(resumed.video, first.video)  # clip 2 alone, not in a batch of 4: equal to rounding


def test_new_bytes_re_encode_their_file_and_a_touch_does_not(footage, codecs, tmp_path, encoded):
    folder = shutil.copytree(footage, tmp_path / "footage")
    load(folder, codecs, tmp_path / "cache")
    make_clip(folder / "hum.mp4", 0.7, 330)  # other sound, same length
    encoded.clear()
    load(folder, codecs, tmp_path / "cache")
    assert sum(encoded) == 2  # hum.mp4's two clips

    os.utime(folder / "talk.mp4")  # new times, same bytes: read again, not encoded
    encoded.clear()
    load(folder, codecs, tmp_path / "cache")
    assert encoded == []


def test_processes_each_encode_their_share_and_all_load_every_clip(footage, codecs, tmp_path, encoded):
    index = scan_footage(footage, SPEC)
    shares = [FootageCache(index, codecs, tmp_path).pending(rank, 2) for rank in (0, 1)]
    assert shares == [[0, 2, 4], [1, 3]]
    assert [FootageCache(index, codecs, tmp_path).encode(rank, 2, progress=False) for rank in (0, 1)] == [3, 2]
    assert sum(encoded) == 5
    encoded.clear()
    latents = [load(footage, codecs, tmp_path, rank=rank, world_size=2) for rank in (0, 1)]
    assert encoded == [] and [len(each) for each in latents] == [5, 5]
    assert torch.equal(latents[0].video, latents[1].video)


def test_a_clip_of_a_truncated_file_is_skipped_with_its_reason(footage, codecs, tmp_path, encoded):
    folder = tmp_path / "footage"
    folder.mkdir()
    whole = (footage / "talk.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) * 45 // 100])  # the header still says 1 s
    (folder / "hum.mp4").write_bytes((footage / "hum.mp4").read_bytes())
    captioned(folder, {"cut.mp4": "a pattern, cut short", "hum.mp4": "a pattern hums"})

    latents = load(folder, codecs, tmp_path / "cache")
    skipped = latents.summary.skipped
    assert skipped and {clip.file for clip in skipped} == {"cut.mp4"}
    assert all("truncated or corrupt" in clip.reason for clip in skipped)
    assert len(latents) == 5 - len(skipped) and latents.summary.encoded == len(latents)
    encoded.clear()
    again = load(folder, codecs, tmp_path / "cache")  # the failure is recorded: not decoded again
    assert encoded == [] and again.summary.skipped == skipped


def test_a_video_only_spec_needs_the_vae_alone(footage, codecs, tmp_path):
    shutil.copytree(codecs / "vae", tmp_path / "codecs" / "vae")
    latents = load(footage, tmp_path / "codecs", tmp_path / "cache", spec=FootageSpec(latent_frames=2, sample_rate=None))
    assert latents.video.shape == (5, 8, 2, 8, 8) and latents.audio is None
    assert latents.batch([1], torch.device("cpu"))["audio"] is None


def edit_config(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: edit_config(c / "vae" / "config.json", temperal_downsample=[False, True, False]),
            r"VAE temporal compression 2, the footage 4\)",
        ),
        (
            lambda c: edit_config(c / "audio_codec" / "config.json", sampling_rate=22050),
            r"audio codec sample rate 22050, the footage 16000\)",
        ),
        (lambda c: shutil.rmtree(c / "audio_codec"), "has no audio_codec/"),
    ],
)
def test_codecs_that_do_not_fit_the_footage_are_one_line(footage, codecs, tmp_path, change, message):
    folder = shutil.copytree(codecs, tmp_path / "codecs")
    change(folder)
    with pytest.raises(ValueError, match=message) as error:
        load(footage, folder, tmp_path / "cache")
    assert "\n" not in str(error.value)


def test_a_rank_outside_the_processes_is_one_line(footage, codecs, tmp_path):
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size=2\), got 2"):
        load(footage, codecs, tmp_path, rank=2, world_size=2)


WORLD_PROMPT = "A red round face with glasses talks in a deep voice on a navy background."


def world_captioned(footage, tmp_path) -> Path:
    """The footage with captions the world's text encoder reads (free text waits for the sentence encoder, #30)."""
    folder = Path(shutil.copytree(footage, tmp_path / "footage", ignore=shutil.ignore_patterns("metadata.jsonl")))
    return captioned(folder, {"talk.mp4": WORLD_PROMPT, "hum.mp4": WORLD_PROMPT})


def footage_config(folder, codecs, tmp_path, run, **changes):
    from avgen.training import load_config

    values = {"data": folder, "codecs": codecs, "cache_dir": tmp_path / "cache", "output_dir": tmp_path / run, "clip_chunks": 2,
              "batch_size": 2, "threads": 1, "warmup_steps": 1, "steps": 2, "checkpoint_every": 2, **changes}  # fmt: skip
    return load_config(stage="pretrain", overrides=[f"{key}={value}" for key, value in values.items()])


def test_a_stage_trains_on_footage_and_resumes(footage, codecs, tmp_path):
    from avgen.training.trainer import Trainer

    folder = world_captioned(footage, tmp_path)
    trainer = Trainer(footage_config(folder, codecs, tmp_path, "run"), progress=False)
    assert len(trainer.data) == 5 and trainer.data.prompts == [WORLD_PROMPT] * 5
    # Every clip once per epoch: 5 clips in batches of 2 cover an epoch in 2.5 steps.
    seen = [index for step in range(5) for index in trainer.batch_indices(step)]
    assert sorted(seen[:5]) == sorted(seen[5:]) == list(range(5))
    trainer.run()
    resumed = Trainer(footage_config(folder, codecs, tmp_path, "run", steps=4), resume=True, progress=False)
    assert resumed.step == 2
    resumed.run()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4


def test_two_processes_on_footage_match_one(footage, codecs, tmp_path):
    from .test_distributed import TOLERANCE, run

    folder = world_captioned(footage, tmp_path)
    one = run(footage_config(folder, codecs, tmp_path, "one", steps=3, batch_size=4), 1)
    two = run(footage_config(folder, codecs, tmp_path, "two", steps=3, batch_size=4), 2)
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        assert abs(a["loss"] - b["loss"]) <= TOLERANCE * max(1.0, abs(a["loss"])), (a, b)
