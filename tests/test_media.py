import numpy as np
import pytest

from avgen.media import MediaError, probe, read_media, write_mp4, write_ts_segment
from avgen.metrics import evaluate
from avgen.world import sample_clip


@pytest.fixture(scope="module")
def clip():
    return sample_clip(5, split="held-out")


@pytest.fixture(scope="module")
def chunk(clip):
    return clip.render(0, 160)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory, clip, chunk):
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    write_mp4(path, chunk.frames, chunk.audio, 16, 16000, metadata={"comment": clip.prompt})
    return path


def test_mp4_is_h264_and_aac_with_the_prompt(mp4, clip):
    info = probe(mp4)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps, info.sample_rate, info.channels) == (64, 64, 16.0, 16000, 1)
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert info.metadata["comment"] == clip.prompt


def test_mp4_reads_back_close_to_what_was_written(mp4, chunk):
    media = read_media(mp4)
    assert media.frames.shape == chunk.frames.shape
    assert np.abs(media.frames.astype(int) - chunk.frames).mean() < 5
    assert media.audio.shape == chunk.audio.shape
    assert np.corrcoef(media.audio[0], chunk.audio[0])[0, 1] > 0.99


def test_metrics_survive_the_round_trip(mp4):
    media = read_media(mp4)
    report = evaluate(media.frames, media.audio, media.fps, media.sample_rate, media.metadata["comment"])
    assert report["sync"]["offset_frames"] == 0 and report["sync"]["confident"]
    assert report["adherence"]["score"] == 1.0


def test_ts_segments_carry_their_start_time_and_stay_in_sync(tmp_path, chunk):
    path = write_ts_segment(tmp_path / "segment-1.ts", chunk.frames[:32], chunk.audio[:, :32_000], 16, 16000, 2.0)
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    media = read_media(path)
    assert len(media.frames) == 32
    # The encoder's priming samples are dropped: sample 0 plays with frame 0.
    n = 30_000
    assert np.corrcoef(media.audio[0, :n], chunk.audio[0, :n])[0, 1] > 0.99


def test_stereo_and_resampling(tmp_path, chunk):
    stereo = np.concatenate([chunk.audio, 0.5 * chunk.audio])[:, :16_000]
    path = write_mp4(tmp_path / "stereo.mp4", chunk.frames[:16], stereo, 16, 16000)
    media = read_media(path, sample_rate=8000)
    assert media.audio.shape == (2, 8000) and media.sample_rate == 8000


@pytest.mark.parametrize(
    "frames, audio, message",
    [
        (np.zeros((4, 63, 64, 3), np.uint8), np.zeros((1, 4000), np.float32), "even"),
        (np.zeros((4, 64, 64, 3), np.float32), np.zeros((1, 4000), np.float32), "uint8"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.zeros((1, 16000), np.float32), "same time"),
        (np.zeros((4, 64, 64, 3), np.uint8), np.zeros((3, 4000), np.float32), "1 or 2 channels"),
        (np.zeros((0, 64, 64, 3), np.uint8), np.zeros((1, 0), np.float32), "empty"),
    ],
)
def test_bad_arrays_are_refused_before_writing(tmp_path, frames, audio, message):
    with pytest.raises(ValueError, match=message):
        write_mp4(tmp_path / "bad.mp4", frames, audio, 16, 16000)
    assert not list(tmp_path.iterdir())


def test_unwritable_paths_are_explained(tmp_path, chunk):
    with pytest.raises(MediaError, match="does not exist"):
        write_mp4(tmp_path / "missing" / "x.mp4", chunk.frames[:16], chunk.audio[:, :16000], 16, 16000)
    with pytest.raises(MediaError, match="is a directory"):
        write_mp4(tmp_path, chunk.frames[:16], chunk.audio[:, :16000], 16, 16000)


def test_missing_and_corrupt_files_are_explained(tmp_path):
    with pytest.raises(MediaError, match="no such media file"):
        read_media(tmp_path / "nothing.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4)
    with pytest.raises(MediaError, match="cannot read"):
        read_media(corrupt)


def test_missing_ffmpeg_is_explained_and_leaves_no_file(tmp_path, chunk, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    target = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="ffmpeg not found.*IMAGEIO_FFMPEG_EXE"):
        write_mp4(target, chunk.frames[:16], chunk.audio[:, :16000], 16, 16000)
    assert not target.exists()


def test_failed_encode_leaves_no_partial_file(tmp_path, chunk, monkeypatch):
    failing = tmp_path / "ffmpeg"
    # Writes half a file to its output (the last argument), then fails, as a crashing encoder would.
    failing.write_text("#!/bin/sh\nfor last; do :; done\necho half > \"$last\"\necho 'Conversion failed!' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(failing))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MediaError, match="Conversion failed"):
        write_mp4(out / "clip.mp4", chunk.frames[:16], chunk.audio[:, :16000], 16, 16000)
    assert not list(out.iterdir())
