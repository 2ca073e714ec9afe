"""Real footage: a folder of video files with captions, cut into clips on the model's clock.

A footage folder holds video files (mp4, mov, mkv, webm; subfolders too) and their captions,
either in a `metadata.jsonl` at its root (one JSON object a line: `file_name`, relative to the
folder, and `text`; Hugging Face's `videofolder` convention) or in a `.txt` beside each file (same
stem); metadata.jsonl wins where both give one. `scan_footage` reads every file's header (nothing
is decoded) and cuts each file into consecutive clips of the training length, dropping the tail
shorter than a clip. A file that cannot be used is skipped with its reason and never raised on.
`decode_clip` reads one clip as the model takes it: frames at its fps, resized to cover its size
and centre-cropped, audio at its codec's rate, downmixed to its channels.

Decoding runs the ffmpeg binary that imageio-ffmpeg ships (avgen.media), not PyAV: it adds no
second FFmpeg (PyAV's wheel bundles its own, 36 MB), and ffmpeg's filters resample the frame rate,
scale, crop and resample the audio in the decoding process, after a frame-accurate seek; a process
per clip and stream costs little next to encoding the clip.
"""

from __future__ import annotations

import json
import logging
import math
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from avgen.data.sample import pixel_frames
from avgen.media import MediaError, _decode, ffmpeg_exe, probe
from avgen.world.config import WorldConfig

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
METADATA = "metadata.jsonl"
# Container durations are rounded and streams end a frame or two apart; a clip that decodes
# shorter than this is padded (last frame repeated, silence), a shorter one means a broken file.
SHORTFALL_FRAMES = 2
PROBE_THREADS = 8  # probing waits on ffmpeg processes, not on Python

_WORLD = WorldConfig()  # avgen-tiny's clock and frame size


@dataclass(frozen=True)
class FootageSpec:
    """What the clips are cut for: the model's clock and frame size, its audio codec and the training length.

    The defaults are avgen-tiny's: 16 fps, 64x64, 16 kHz mono, 4x temporal / 8x spatial VAE, and
    the tiny training clip of 8 latent frames (29 pixel frames). sample_rate None is a video-only
    model: audio is neither required nor decoded.
    """

    fps: int = _WORLD.fps
    height: int = _WORLD.height
    width: int = _WORLD.width
    sample_rate: int | None = _WORLD.sample_rate
    audio_channels: int = 1
    latent_frames: int = 8  # TrainingConfig.clip_chunks of the tiny preset's one-latent-frame chunks
    temporal_compression: int = 4
    spatial_compression: int = 8

    def __post_init__(self):
        for name in ("fps", "audio_channels", "latent_frames", "temporal_compression", "spatial_compression"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("height", "width"):
            size = getattr(self, name)
            if size < 1 or size % self.spatial_compression:
                raise ValueError(f"{name} must be a positive multiple of {self.spatial_compression} (the VAE's spatial compression), got {size}")
        if self.sample_rate is not None and (self.sample_rate < 1 or self.sample_rate % self.fps):
            raise ValueError(
                f"sample_rate must be a positive multiple of fps ({self.fps}) so that every frame covers whole samples, got {self.sample_rate}"
            )

    @property
    def require_audio(self) -> bool:
        return self.sample_rate is not None

    @property
    def clip_frames(self) -> int:
        return pixel_frames(self.latent_frames, self.temporal_compression)

    @property
    def clip_seconds(self) -> float:
        return self.clip_frames / self.fps

    @property
    def clip_samples(self) -> int | None:
        return self.clip_frames * self.sample_rate // self.fps if self.require_audio else None

    def describe(self) -> dict:
        """The spec with the clip layout it implies, for reports."""
        return {**asdict(self), "clip_frames": self.clip_frames, "clip_seconds": self.clip_seconds}

    @classmethod
    def from_model_folder(cls, folder: str | os.PathLike, latent_frames: int | None = None) -> FootageSpec:
        """The spec of a pipeline folder (or a codecs folder: vae/ and audio_codec/ alone).

        fps, height, width and num_frames come from model_index.json where it sets them (else the
        defaults), the compressions from vae/config.json, the audio from audio_codec/config.json
        unless model_index.json names no audio codec (a video-only model).

        Args:
            latent_frames: training clip length; default: the folder's num_frames, else 8.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"model folder {str(folder)!r} does not exist; give a pipeline folder such as weights/avgen-tiny")
        if not (folder / "vae" / "config.json").is_file():
            raise ValueError(f"{str(folder)!r} is not a model folder: it has no vae/config.json; give a pipeline folder such as weights/avgen-tiny")
        index = _read_json(folder / "model_index.json") if (folder / "model_index.json").is_file() else {}
        vae = _read_json(folder / "vae" / "config.json")
        if not (vae.get("temperal_downsample") and vae.get("dim_mult")):
            raise ValueError(f"{str(folder / 'vae' / 'config.json')!r} is not a causal video VAE's config: it has no temperal_downsample and dim_mult")
        temporal = 2 ** sum(vae["temperal_downsample"])  # as VideoCodec.temporal_compression
        spatial = 2 ** (len(vae["dim_mult"]) - 1)  # as VideoCodec.spatial_compression
        audio_config = folder / "audio_codec" / "config.json"
        if index:  # a pipeline folder lists its components; a converted video model's audio_codec is [null, null]
            has_audio = (index.get("audio_codec") or [None])[0] is not None
        else:  # a codecs folder (train/codecs.py) is its subfolders
            has_audio = audio_config.is_file()
        if has_audio and not audio_config.is_file():
            raise ValueError(f"{str(folder)!r} names an audio codec but has no audio_codec/config.json; the folder is incomplete")
        audio = _read_json(audio_config) if has_audio else {}
        if latent_frames is None:
            latent_frames = _latent_frames(index.get("num_frames"), temporal, folder) or cls.latent_frames
        return cls(
            fps=_whole(index.get("fps", cls.fps), "fps", folder),
            height=index.get("height") or cls.height,
            width=index.get("width") or cls.width,
            sample_rate=audio.get("sampling_rate", _WORLD.sample_rate) if has_audio else None,
            audio_channels=audio.get("audio_channels", 1),
            latent_frames=latent_frames,
            temporal_compression=temporal,
            spatial_compression=spatial,
        )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {str(path)!r}: not a JSON config ({error})") from None


def _whole(value, name: str, folder: Path) -> int:
    if value != int(value):
        raise ValueError(f"{name} in {str(folder / 'model_index.json')!r} must be a whole number, got {value}")
    return int(value)


def _latent_frames(num_frames: int | None, temporal: int, folder: Path) -> int | None:
    """Latent frames of the folder's clip length (pixel frames 1 + temporal (k - 1)), or None when it sets none."""
    if num_frames is None:
        return None
    if (num_frames - 1) % temporal:
        raise ValueError(f"num_frames in {str(folder / 'model_index.json')!r} must be 1 + {temporal} k for the causal VAE, got {num_frames}")
    return (num_frames - 1) // temporal + 1


@dataclass(frozen=True)
class FootageFile:
    """A usable file: `path` relative to the folder (posix), its caption, duration and source audio channels."""

    path: str
    caption: str
    seconds: float
    channels: int | None  # the source's audio channels; None without audio
    clips: int


@dataclass(frozen=True)
class FootageClip:
    """Clip of `spec.clip_frames` frames starting `start_seconds` into `file`."""

    file: FootageFile
    start_seconds: float


@dataclass(frozen=True)
class Skipped:
    """A file a training run would not use, and why (one line a user can act on)."""

    path: str
    reason: str


@dataclass(frozen=True)
class FootageIndex:
    """What `scan_footage` found: the usable files in order, their clips, and the skipped files."""

    folder: Path
    spec: FootageSpec
    files: tuple[FootageFile, ...]
    clips: tuple[FootageClip, ...]
    skipped: tuple[Skipped, ...]

    @property
    def seconds(self) -> float:
        """Seconds of footage in clips (the tails shorter than a clip are not)."""
        return len(self.clips) * self.spec.clip_seconds

    def summary(self) -> dict:
        """Files, clips, seconds and skipped files with reasons, as JSON-ready data."""
        return {
            "folder": str(self.folder),
            "model": self.spec.describe(),
            "clips": len(self.clips),
            "seconds": round(self.seconds, 4),
            "footage_seconds": round(sum(file.seconds for file in self.files), 4),
            "files": [{"file": f.path, "seconds": f.seconds, "clips": f.clips, "caption": f.caption} for f in self.files],
            "skipped": [{"file": s.path, "reason": s.reason} for s in self.skipped],
        }


def scan_footage(folder: str | os.PathLike, spec: FootageSpec | None = None, progress: bool = False) -> FootageIndex:
    """Index a footage folder for `spec` (default: avgen-tiny's) from the files' headers alone.

    Raises ValueError for a folder that cannot be footage (missing, empty, no video files, a
    metadata.jsonl that is malformed or names a missing file); a single unusable file is skipped
    and listed in the index with its reason.
    """
    spec = spec or FootageSpec()
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"footage folder {str(folder)!r} does not exist; give a folder of video files")
    captions = _read_metadata(folder)
    names = sorted(set(_video_files(folder)) | set(captions))
    if not names:
        what = "has no video files" if any(folder.iterdir()) else "is empty"
        raise ValueError(
            f"footage folder {str(folder)!r} {what}: put {', '.join(e[1:] for e in VIDEO_EXTENSIONS)} files in it, "
            f"with captions in {METADATA} or a .txt beside each"
        )
    ffmpeg_exe()  # a missing ffmpeg is one error, not a reason to skip every file
    with ThreadPoolExecutor(min(PROBE_THREADS, len(names))) as pool:
        found = pool.map(lambda name: _examine(folder, name, captions.get(name), spec), names)
        found = list(tqdm(found, total=len(names), desc="probing footage", unit="file", disable=not progress))
    files = tuple(item for item in found if isinstance(item, FootageFile))
    skipped = tuple(item for item in found if isinstance(item, Skipped))
    for item in skipped:
        logger.info("skipping %s: %s", item.path, item.reason)
    clips = tuple(FootageClip(file, i * spec.clip_seconds) for file in files for i in range(file.clips))
    logger.info("%s: %d clips from %d files, %d files skipped", folder, len(clips), len(files), len(skipped))
    return FootageIndex(folder=folder, spec=spec, files=files, clips=clips, skipped=skipped)


def _read_metadata(folder: Path) -> dict[str, str]:
    """{file name relative to the folder: caption} from metadata.jsonl (empty text: ""), or {} without one."""
    path = folder / METADATA
    if not path.is_file():
        return {}
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is not UTF-8 text; save it as UTF-8") from None
    captions, lines = {}, {}
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{str(path)!r} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f'{where} is not JSON ({error.msg}); write one {{"file_name": ..., "text": ...}} a line') from None
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise ValueError(f'{where} has no "file_name"; write one {{"file_name": ..., "text": ...}} a line')
        name = posixpath.normpath(entry["file_name"].replace(os.sep, "/"))
        if name.startswith("../") or name == ".." or posixpath.isabs(name):
            raise ValueError(f"{where} names {entry['file_name']!r}, outside the folder; give names relative to {str(folder)!r}")
        if not (folder / name).is_file():
            raise ValueError(f"{where} names {name!r}, which is not in {str(folder)!r}; fix the name or remove the line")
        if name in lines:
            raise ValueError(f"{where} names {name!r} again (first on line {lines[name]}); keep one caption per file")
        lines[name] = number
        text = entry.get("text")
        captions[name] = text.strip() if isinstance(text, str) else ""
    return captions


def _video_files(folder: Path) -> list[str]:
    """Names, relative to the folder, of the video files in it and its subfolders; hidden ones left out
    (partial downloads, macOS's ._ resource files)."""
    names = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file() and not any(p.startswith(".") for p in relative.parts):
            names.append(relative.as_posix())
    return names


def _examine(folder: Path, name: str, caption: str | None, spec: FootageSpec) -> FootageFile | Skipped:
    """The file as usable footage, or why it is not; never raises for what is in the file."""
    path, sidecar = folder / name, posixpath.splitext(name)[0] + ".txt"
    try:
        caption = caption or _sidecar_caption(folder / sidecar)
    except (OSError, UnicodeDecodeError) as error:
        return Skipped(name, f"cannot read its caption file {sidecar} ({error})")
    if not caption:
        return Skipped(name, f"no caption: add it to {METADATA} or to {sidecar}")
    try:
        info = probe(path)
    except (MediaError, OSError) as error:
        return Skipped(name, str(error).removeprefix(f"cannot read {str(path)!r}: "))
    if info.video_codec is None:
        return Skipped(name, "no video stream")
    if spec.require_audio and info.audio_codec is None:
        return Skipped(name, "no audio stream, and the model takes sound with its video")
    if spec.require_audio and info.channels is None:
        return Skipped(name, "its audio layout gives no channel count; re-encode the sound (ffmpeg -i IN -c:v copy -ac 2 OUT.mp4)")
    if spec.require_audio and spec.audio_channels > 1 and info.channels not in (1, spec.audio_channels):
        return Skipped(name, f"{info.channels}-channel audio; the audio codec takes {spec.audio_channels} channels (or mono)")
    if info.duration is None:
        return Skipped(name, "its header gives no duration; remux it (ffmpeg -i IN -c copy OUT.mkv)")
    # Frames available at the model's fps; the epsilon keeps an exact multiple from flooring down.
    clips = math.floor(info.duration * spec.fps + 1e-6) // spec.clip_frames
    if clips == 0:
        return Skipped(name, f"shorter than one clip ({info.duration:.2f} s < {spec.clip_seconds:.2f} s)")
    channels = info.channels if spec.require_audio else None
    return FootageFile(path=name, caption=caption, seconds=info.duration, channels=channels, clips=clips)


def _sidecar_caption(sidecar: Path) -> str:
    return sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else ""


def decode_clip(folder: str | os.PathLike, clip: FootageClip, spec: FootageSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """One clip as the model takes it.

    Returns:
        frames (spec.clip_frames, spec.height, spec.width, 3) uint8 RGB and audio
        (spec.audio_channels, spec.clip_samples) float32 in [-1, 1] (None for a video-only spec);
        sample 0 plays with frame 0 on the file's clock.

    Raises:
        MediaError naming the file when it decodes to less than its header promised (truncated
        or corrupt past the header): a clip is never padded by more than SHORTFALL_FRAMES frames.
    """
    path = Path(folder) / clip.file.path
    # A margin past the clip, so that the fps filter finds a source frame near the last one.
    seek = ("-ss", f"{clip.start_seconds:.6f}", "-t", f"{spec.clip_seconds + SHORTFALL_FRAMES / spec.fps:.6f}")
    W, H = spec.width, spec.height
    # fps first (fewer frames to scale); start_time=0 repeats the first frame when video starts after audio.
    scale = f"fps={spec.fps}:start_time=0,scale={W}:{H}:force_original_aspect_ratio=increase:flags=lanczos,crop={W}:{H}"
    pixels = _decode(path, ["-map", "0:v:0", "-vf", scale, "-frames:v", str(spec.clip_frames), "-f", "rawvideo", "-pix_fmt", "rgb24"], seek)
    frames = np.frombuffer(bytearray(pixels), np.uint8).reshape(-1, H, W, 3)
    frames = _exact_length(frames, spec.clip_frames, 0, clip, spec)
    if not spec.require_audio:
        return frames, None
    # The source's own channels: ffmpeg's downmix keeps power (L = R comes out 3 dB louder), a mean keeps level.
    resample = f"aresample={spec.sample_rate}:async=1:first_pts=0"  # silence before audio that starts late
    samples = _decode(path, ["-map", "0:a:0", "-af", resample, "-f", "f32le"], seek)
    audio = np.frombuffer(bytearray(samples), np.float32).reshape(-1, clip.file.channels).T  # (source channels, S)
    audio = _exact_length(_downmix(audio, spec.audio_channels), spec.clip_samples, 1, clip, spec)
    return frames, np.clip(audio, -1.0, 1.0)  # AAC overshoots full scale a little


def _downmix(audio: np.ndarray, channels: int) -> np.ndarray:
    """(c, S) -> (channels, S): the mean for mono, mono copied to every channel, else as it is."""
    if audio.shape[0] == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    assert audio.shape[0] == 1, f"scan_footage skips {audio.shape[0]}-channel audio for a {channels}-channel codec"
    return np.repeat(audio, channels, axis=0)


def _exact_length(array: np.ndarray, length: int, axis: int, clip: FootageClip, spec: FootageSpec) -> np.ndarray:
    """`array` cut or padded (last frame repeated, silence) to `length` along `axis`, within SHORTFALL_FRAMES frames."""
    have = array.shape[axis]
    tolerance = SHORTFALL_FRAMES * length // spec.clip_frames
    if have == 0 or length - have > tolerance:
        what = "frames" if axis == 0 else "audio samples"
        raise MediaError(
            f"{clip.file.path!r} decoded to {have} of {length} {what} from {clip.start_seconds:.2f} s, "
            "less than its header says: the file is truncated or corrupt; remove it from the folder"
        )
    if have < length:
        pad = [(0, 0)] * array.ndim
        pad[axis] = (0, length - have)
        array = np.pad(array, pad, mode="edge" if axis == 0 else "constant")
    return array[:length] if axis == 0 else array[:, :length]
