"""Audio + video files: H.264/AAC mp4 (plays in browsers) and MPEG-TS segments for streaming.

Everything goes through the ffmpeg binary that imageio-ffmpeg ships (or the one named by
IMAGEIO_FFMPEG_EXE); ffprobe is not needed. Files are written to a temporary name beside
the target and renamed only when ffmpeg succeeded, so a failed write never leaves a
half-written file behind.

Layouts at this boundary: frames (F, H, W, 3) uint8 RGB; audio (channels, S) float32 in [-1, 1],
or None for a video-only file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AUDIO_BITRATE = "128k"
VIDEO_CRF = 12  # near-lossless: metrics read colours and mouth pixels back from the file
AUDIO_CODECS = {"aac": ["-c:a", "aac", "-b:a", AUDIO_BITRATE], "flac": ["-c:a", "flac"]}


class MediaError(RuntimeError):
    """A media file could not be written or read; the message says why and what to do."""


@dataclass(frozen=True)
class MediaInfo:
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    duration: float | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    frames: np.ndarray  # (F, H, W, 3) uint8
    audio: np.ndarray  # (channels, S) float32
    fps: float
    sample_rate: int
    metadata: dict[str, str] = field(default_factory=dict)


def ffmpeg_exe() -> str:
    """Path of a working ffmpeg binary, or a MediaError saying how to get one."""
    import imageio_ffmpeg

    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        exe = None
    resolved = shutil.which(exe) if exe else None
    if resolved is None:
        raise MediaError(
            f"ffmpeg not found{f' at {exe!r}' if exe else ''}: run `make install` "
            "(imageio-ffmpeg ships one) or point IMAGEIO_FFMPEG_EXE at an ffmpeg binary"
        )
    return resolved


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: float,
    sample_rate: int | None,
    metadata: dict[str, str] | None = None,
    audio_codec: str = "aac",
) -> Path:
    """Write frames + audio as an H.264 (yuv420p) + AAC mp4 that browsers play.

    Args:
        frames: (F, H, W, 3) uint8, H and W even.
        audio: (channels, S) float in [-1, 1], 1 or 2 channels, covering the same time as the frames;
            None writes video only (sample_rate None too).
        metadata: container tags, e.g. {"comment": prompt}.
        audio_codec: "aac", or "flac" for a file whose audio is decoded again and must come back
            sample-exact (AAC adds the encoder's priming and pads its last frame).
    """
    if audio_codec not in AUDIO_CODECS:
        raise ValueError(f"audio_codec must be one of {', '.join(AUDIO_CODECS)}, got {audio_codec!r}")
    extra = [*(AUDIO_CODECS[audio_codec] if audio is not None else []), "-movflags", "+faststart", "-f", "mp4"]
    for key, value in (metadata or {}).items():
        extra += ["-metadata", f"{key}={value}"]
    return _encode(path, frames, audio, fps, sample_rate, extra)


def write_ts_segment(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: float,
    sample_rate: int | None,
    start_seconds: float = 0.0,
) -> Path:
    """Write one MPEG-TS segment (H.264 + AAC) whose timestamps start at `start_seconds`.

    Consecutive segments of a stream play back to back (HLS, Gradio's streaming video).
    """
    extra = [*(AUDIO_CODECS["aac"] if audio is not None else []), "-output_ts_offset", f"{start_seconds:.6f}", "-muxdelay", "0", "-f", "mpegts"]
    return _encode(path, frames, audio, fps, sample_rate, extra)


# Channel layouts ffmpeg names without a count; "5.1(side)" and the like count as their digits.
NAMED_LAYOUTS = {"mono": 1, "stereo": 2, "downmix": 2, "quad": 4, "hexagonal": 6, "octagonal": 8, "hexadecagonal": 16}


def layout_channels(layout: str) -> int | None:
    """Channels of an audio layout as ffmpeg's report names it: "stereo", "5.1(side)", "6 channels"; None if unknown."""
    layout = layout.strip()
    counted = re.fullmatch(r"(\d+) channels.*", layout)
    if counted:
        return int(counted.group(1))
    base = layout.split("(")[0]
    if base in NAMED_LAYOUTS:
        return NAMED_LAYOUTS[base]
    digits = re.fullmatch(r"(\d+)\.(\d+)", base)  # front/side/back speakers . low-frequency ones
    return int(digits.group(1)) + int(digits.group(2)) if digits else None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams, sizes, rates, duration and container tags of a media file (parsed from ffmpeg's report)."""
    path = _existing(path)
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    report = result.stderr
    if "Input #0" not in report:
        reason = report.strip().splitlines()[-1] if report.strip() else "no report from ffmpeg"
        raise MediaError(f"cannot read {str(path)!r}: not a media file ffmpeg can decode ({reason})")
    video = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\d+)x(\d+)", report)
    fps = re.search(r"Video:.*?, ([\d.]+) fps", report)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+).*?, (\d+) Hz, ([^,\n]+)", report)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", report)
    header = report.split("Stream #", 1)[0]
    metadata = dict(re.findall(r"^\s{4}(\w+)\s*: (.*)$", header, flags=re.MULTILINE))
    channels = layout_channels(audio.group(3)) if audio else None
    return MediaInfo(
        width=int(video.group(2)) if video else None,
        height=int(video.group(3)) if video else None,
        fps=float(fps.group(1)) if fps else None,
        video_codec=video.group(1) if video else None,
        audio_codec=audio.group(1) if audio else None,
        sample_rate=int(audio.group(2)) if audio else None,
        channels=channels,
        duration=(int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3)))
        if duration
        else None,
        metadata={key: value.strip() for key, value in metadata.items()},
    )


def read_media(path: str | os.PathLike, sample_rate: int | None = None) -> Media:
    """Decode a media file's first video and audio streams.

    Args:
        sample_rate: resample the audio to this rate; default: the file's own rate.

    Returns:
        Media with frames (F, H, W, 3) uint8 and audio (channels, S) float32. A file
        without an audio stream is an error: avgen media always carry sound.
    """
    path = _existing(path)
    info = probe(path)
    if info.video_codec is None or info.audio_codec is None:
        missing = "video" if info.video_codec is None else "audio"
        raise MediaError(f"cannot read {str(path)!r}: it has no {missing} stream")
    rate = sample_rate or info.sample_rate
    frames = _frames(path, info)
    channels = info.channels or 2  # a layout without a count: ffmpeg downmixes it to stereo
    samples = _decode(path, ["-map", "0:a:0", "-f", "f32le", "-ac", str(channels), "-ar", str(rate)])
    audio = np.frombuffer(samples, np.float32).reshape(-1, channels).T  # (channels, S)
    # MPEG-TS keeps the AAC encoder's priming samples, stamped before the first picture;
    # drop (or pad) audio so that sample 0 plays with frame 0, as a player would.
    lead = int(round((_start_seconds(path, "v") - _start_seconds(path, "a")) * rate))
    audio = audio[:, lead:] if lead >= 0 else np.pad(audio, ((0, 0), (-lead, 0)))
    return Media(frames=frames, audio=np.ascontiguousarray(audio), fps=info.fps, sample_rate=rate, metadata=info.metadata)


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode a file's first video stream (its sound, if any, is ignored): frames (F, H, W, 3) uint8 and fps."""
    path = _existing(path)
    info = probe(path)
    if info.video_codec is None:
        raise MediaError(f"cannot read {str(path)!r}: it has no video stream")
    return _frames(path, info), info.fps


def _frames(path: Path, info: MediaInfo) -> np.ndarray:
    """Every frame of the first video stream, (F, H, W, 3) uint8 RGB."""
    frames = _decode(path, ["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24"])
    return np.frombuffer(frames, np.uint8).reshape(-1, info.height, info.width, 3)


def check_writable(path: str | os.PathLike) -> Path:
    """Raise a MediaError unless `path` can be created (its folder exists and is writable)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise MediaError(f"cannot write {str(path)!r}: it is a directory; give a file name such as out.mp4")
    if not folder.is_dir():
        raise MediaError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise MediaError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable; choose another path")
    return path


def _encode(path, frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int | None, extra: list[str]) -> Path:
    frames, audio = _check_av(frames, audio, fps, sample_rate)
    path = check_writable(path)
    F, H, W, _ = frames.shape
    with tempfile.TemporaryDirectory(prefix="avgen-") as scratch:
        sound_input, sound_map = [], []
        if audio is not None:
            audio_file = Path(scratch) / "audio.f32"
            np.ascontiguousarray(audio.T, dtype="<f4").tofile(audio_file)  # interleaved (S, channels)
            sound_input = ["-f", "f32le", "-ar", str(sample_rate), "-ac", str(audio.shape[0]), "-i", str(audio_file)]
            sound_map = ["-map", "1:a:0"]
        # fmt: off
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", f"{fps}", "-i", "pipe:0",
            *sound_input, "-map", "0:v:0", *sound_map,
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(VIDEO_CRF), "-pix_fmt", "yuv420p",
            *extra,
        ]
        # fmt: on
        temporary = path.with_name(f".{path.name}.partial")
        result = subprocess.run(command + [str(temporary)], input=frames.tobytes(), capture_output=True)
        if result.returncode != 0:
            temporary.unlink(missing_ok=True)
            reason = result.stderr.decode(errors="replace").strip().splitlines()
            raise MediaError(f"ffmpeg could not write {str(path)!r}: {reason[-1] if reason else 'unknown error'}")
        os.replace(temporary, path)
    return path


def _check_av(frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    F, H, W, _ = frames.shape
    if F == 0:
        raise ValueError("frames is empty: there is nothing to write")
    if H % 2 or W % 2:
        raise ValueError(f"frame height and width must be even for H.264, got {H}x{W}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if audio is None:
        return frames, None
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (channels, samples) with 1 or 2 channels, got {tuple(audio.shape)}")
    if sample_rate is None or sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    video_seconds, audio_seconds = F / fps, audio.shape[1] / sample_rate
    if abs(video_seconds - audio_seconds) > 1.0 / fps:
        raise ValueError(
            f"audio ({audio_seconds:.3f} s) and frames ({video_seconds:.3f} s) must cover the same time, within one frame"
        )
    return frames, audio


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (height, width, 3) uint8: resized to cover the frame (aspect kept), centre-cropped."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    resized = Image.fromarray(image).resize((max(width, round(w * scale)), max(height, round(h * scale))), Image.LANCZOS)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)))


def _decode(path: Path, output: list[str], before_input: tuple[str, ...] = ()) -> bytes:
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *before_input, "-i", str(path), *output, "pipe:1"]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"cannot decode {str(path)!r}: {reason[-1] if reason else 'ffmpeg failed'}")
    return result.stdout


def _start_seconds(path: Path, stream: str) -> float:
    """Presentation time of the first decoded frame of stream "v" or "a", in seconds."""
    report = _decode(path, ["-map", f"0:{stream}:0", f"-frames:{stream}", "1", "-f", "framecrc"], ("-copyts",))
    text = report.decode()
    base = re.search(r"^#tb 0: (\d+)/(\d+)", text, flags=re.MULTILINE)
    first = re.search(r"^0,\s*(-?\d+),", text, flags=re.MULTILINE)
    if not (base and first):
        raise MediaError(f"cannot read {str(path)!r}: its {'video' if stream == 'v' else 'audio'} stream has no frames")
    return int(first.group(1)) * int(base.group(1)) / int(base.group(2))


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"no such media file: {str(path)!r}; check the path")
    return path
