"""Footage encoded once: every clip of a footage folder as latents, one small file per clip on disk.

A clip of a scanned footage folder (avgen/data/footage.py) becomes video latents (Cv, F', h, w)
and audio latents (Ca, A), A = F' * audio latents per latent frame (no audio for a video-only
spec), stored as `<cache>/<key[:2]>/<key>.safetensors`. The key covers what decides the latents:
  * the file's content: sha256 of all its bytes, streamed in 1 MiB blocks. A whole-file digest
    rather than size + mtime + its first and last MiB, because those miss an edit in the middle
    that keeps the size, and change when a folder is copied or touched, re-encoding footage that
    did not change. Reading a file costs far less than encoding it, and the digest is remembered
    against the file's path, size, mtime and ctime (`<cache>/files/`), so a rerun costs a stat
    per file and a touched or moved file costs one more read, never an encode;
  * the codecs' encoders and configs (`encoding_digest`, as the world's latent cache);
  * the clip layout: every FootageSpec field, the clip's start, and DECODING.
The caption is not part of it: editing a caption never re-encodes.

Each file is written under a temporary name and renamed, so a killed run leaves whole files only
and the next run encodes what is missing; a clip already encoded costs a stat. A clip that fails
to decode (a file truncated past its header) is recorded beside the latents as `<key>.failed`
with its reason and left out, never raised on. Under torchrun, process `rank` of `world_size`
encodes clips rank::world_size, all wait for each other, and every process loads every clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avgen.codecs.audio import AudioCodec
from avgen.codecs.av import audio_latents_per_frame, encode_clip
from avgen.codecs.video import VideoCodec
from avgen.data.footage import FootageClip, FootageIndex, FootageSpec
from avgen.data.footage_dataset import FootageDataset
from avgen.media import MediaError
from avgen.training.latents import encoding_digest, require_codecs
from avgen.world import default_cache_dir

# Bump when decode_clip yields other pixels or samples for the same clip (filters, seeking), so
# that no cache made by the old decoding is read.
DECODING = 1
ENCODE_BATCH = 4  # clips per encoder call
READ_BLOCK = 1 << 20
# How long a process waits for the others' shares: hours of footage, far past the default process
# group's timeout (10-30 minutes).
WAIT_FOR_SHARES = timedelta(days=1)


@dataclass(frozen=True)
class SkippedClip:
    """A clip left out because it could not be decoded, and why (one line a user can act on)."""

    file: str
    start_seconds: float
    reason: str


@dataclass(frozen=True)
class EncodingSummary:
    """What loading a footage folder's latents found and did."""

    cache_dir: Path
    clips: int  # clips loaded
    encoded: int  # clips this process encoded in this call (the rest were in the cache or skipped)
    skipped: tuple[SkippedClip, ...]


class FootageLatents:
    """A footage folder's clips as latents, in LatentClips' interface (the trainer takes either).

    Attributes:
        video: (N, Cv, F', h, w) float32, F' = spec.latent_frames.
        audio: (N, Ca, A) float32, A = F' * audio latents per latent frame; None for a video-only spec.
        prompts: N captions.
        clips: the N FootageClips the rows come from (clips that failed to decode are left out).
        summary: an EncodingSummary, with the skipped clips and their reasons.
    """

    def __init__(self, video: torch.Tensor, audio: torch.Tensor | None, clips: list[FootageClip], summary: EncodingSummary):
        self.video, self.audio, self.clips, self.summary = video, audio, clips, summary
        self.prompts = [clip.file.caption for clip in clips]

    def __len__(self) -> int:
        return len(self.prompts)

    def batch(self, indices: list[int], device: torch.device) -> dict:
        """video (B, Cv, F', h, w), audio (B, Ca, A) or None, and B prompts."""
        return {
            "video": self.video[indices].to(device),
            "audio": self.audio[indices].to(device) if self.audio is not None else None,
            "prompts": [self.prompts[i] for i in indices],
        }

    @classmethod
    def load_or_encode(
        cls,
        index: FootageIndex,
        codecs: str | os.PathLike,
        cache_dir: str | os.PathLike | None = None,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ) -> FootageLatents:
        """Latents of every clip of `index`, encoding on `device` only those not yet in the cache.

        Process `rank` of `world_size` encodes clips rank::world_size; under torch.distributed every
        process then waits for the others. Whatever is still missing afterwards (ranks run one after
        another without torch.distributed) is encoded here, so the result always holds every clip.

        Args:
            codecs: a folder with vae/ and, unless the spec is video-only, audio_codec/.
            cache_dir: default: `footage-latents` beside the world's cache.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        group = _wait_group()  # before any work: creating the group waits for every process
        cache = FootageCache(index, codecs, cache_dir, progress)
        encoded = cache.encode(rank, world_size, device, progress)
        if group is not None:
            dist.barrier(group=group)
            dist.destroy_process_group(group)
        encoded += cache.encode(device=device, progress=progress)
        return cache.load(encoded)


def _wait_group() -> dist.ProcessGroup | None:
    """A gloo group with a long timeout to wait on the others' shares; None outside torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.new_group(backend="gloo", timeout=WAIT_FOR_SHARES)


class FootageCache:
    """Where every clip of a footage index is cached for a codec folder (see the module docstring).

    Attributes:
        folder: the cache folder.
        paths: per clip of index.clips, the path of its latents.
    """

    def __init__(self, index: FootageIndex, codecs: str | os.PathLike, cache_dir: str | os.PathLike | None = None, progress: bool = False):
        self.dataset = FootageDataset(index)  # decodes the clips; refuses an index without any
        self.codecs = check_codecs(codecs, index.spec)
        self.folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir().parent / "footage-latents"
        encoders = {
            "vae": encoding_digest(self.codecs / "vae"),
            "audio_codec": encoding_digest(self.codecs / "audio_codec") if index.spec.require_audio else None,
        }
        files = tqdm(index.files, desc="hashing footage", unit="file", disable=not progress)
        contents = {file.path: file_digest(index.folder / file.path, self.folder / "files") for file in files}
        self.paths = [self._path(clip_key(contents[clip.file.path], encoders, index.spec, clip)) for clip in index.clips]

    @property
    def index(self) -> FootageIndex:
        return self.dataset.index

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"  # 256 subfolders keep each folder listable

    def pending(self, rank: int = 0, world_size: int = 1) -> list[int]:
        """Clips rank::world_size with neither latents nor a failure record in the cache."""
        return [i for i in range(rank, len(self.paths), world_size) if not (self.paths[i].is_file() or _failed(self.paths[i]).is_file())]

    @torch.no_grad()
    def encode(self, rank: int = 0, world_size: int = 1, device: str | torch.device = "cpu", progress: bool = True) -> int:
        """Encode this process's pending clips; returns how many were encoded (clips that failed to decode are not)."""
        todo = self.pending(rank, world_size)
        if not todo:
            return 0
        video_codec, audio_codec = load_footage_codecs(self.codecs, self.index.spec, device)
        encoded = 0
        with tqdm(total=len(todo), desc="encoding footage", unit="clip", disable=not progress) as bar:
            for tried, decoded in self._decoded_batches(todo):
                if decoded:
                    self._encode(decoded, video_codec, audio_codec, device)
                encoded += len(decoded)
                bar.update(tried)
        return encoded

    def _decoded_batches(self, todo: list[int]) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        """(clips tried, [(clip number, sample)] of those that decoded) per batch of `todo`.

        Batches are decoded one ahead of the caller, on threads: the ffmpeg processes then run on
        the cores the encoder leaves, not between its calls.
        """
        batches = [todo[start : start + ENCODE_BATCH] for start in range(0, len(todo), ENCODE_BATCH)]
        with ThreadPoolExecutor(ENCODE_BATCH) as pool:
            submit = lambda numbers: [(i, pool.submit(self._decode, i)) for i in numbers]  # noqa: E731
            ahead = submit(batches[0])
            for following in [*batches[1:], []]:
                current, ahead = ahead, submit(following)
                yield len(current), [(i, sample) for i, future in current if (sample := future.result()) is not None]

    def _decode(self, number: int) -> dict | None:
        """Clip `number` as a training sample, or None once its failure is recorded."""
        try:
            return self.dataset[number]
        except MediaError as error:
            _write_atomically(_failed(self.paths[number]), lambda path: path.write_text(str(error)))
            return None

    def _encode(self, decoded: list[tuple[int, dict]], video_codec: VideoCodec, audio_codec: AudioCodec | None, device) -> None:
        """Encode decoded clips in one call and write each clip's latents."""
        spec = self.index.spec
        video = torch.stack([sample["video"] for _, sample in decoded]).to(device)  # (B, 3, F, H, W)
        if audio_codec is None:
            video_latents, audio_latents = video_codec.encode_latents(video), None
        else:
            audio = torch.stack([sample["audio"] for _, sample in decoded]).to(device)  # (B, C, S)
            video_latents, audio_latents = encode_clip(video_codec, audio_codec, video, audio, spec.fps, spec.sample_rate)
        for row, (number, _) in enumerate(decoded):
            tensors = {"video": video_latents[row].cpu().contiguous()}  # (Cv, F', h, w)
            if audio_latents is not None:
                tensors["audio"] = audio_latents[row].cpu().contiguous()  # (Ca, A)
            clip = self.index.clips[number]
            metadata = {"file": clip.file.path, "start_seconds": repr(clip.start_seconds)}  # for whoever browses the cache
            _write_atomically(self.paths[number], lambda path: save_file(tensors, path, metadata))

    def load(self, encoded: int = 0) -> FootageLatents:
        """Every clip's latents from the cache, the clips that failed to decode left out.

        Args:
            encoded: clips the caller encoded, for the summary.
        """
        clips, videos, audios, skipped = [], [], [], []
        for clip, path in zip(self.index.clips, self.paths):
            if path.is_file():
                tensors = load_file(path)
                clips.append(clip)
                videos.append(tensors["video"])
                audios.append(tensors.get("audio"))
            elif _failed(path).is_file():
                skipped.append(SkippedClip(clip.file.path, clip.start_seconds, _failed(path).read_text()))
            else:
                raise ValueError(
                    f"{clip.file.path!r} from {clip.start_seconds:.2f} s is not encoded in {str(self.folder)!r}; "
                    "encode it first (FootageLatents.load_or_encode encodes what is missing)"
                )
        if not clips:
            raise ValueError(f"no clip of {str(self.index.folder)!r} could be decoded ({skipped[0].reason}); replace the broken files")
        summary = EncodingSummary(self.folder, len(clips), encoded, tuple(skipped))
        audio = torch.stack(audios) if self.index.spec.require_audio else None
        return FootageLatents(torch.stack(videos), audio, clips, summary)


def check_codecs(codecs: str | os.PathLike, spec: FootageSpec) -> Path:
    """The codec folder, once it has what `spec` needs in sizes that fit it; else a one-line ValueError."""
    folder = require_codecs(codecs, audio=spec.require_audio)
    video_codec, audio_codec = load_footage_codecs(folder, spec, "meta")  # their sizes: no weights read
    sizes = [
        ("VAE temporal compression", video_codec.temporal_compression, spec.temporal_compression),
        ("VAE spatial compression", video_codec.spatial_compression, spec.spatial_compression),
    ]
    if audio_codec is not None:
        sizes += [
            ("audio codec sample rate", audio_codec.config.sampling_rate, spec.sample_rate),
            ("audio codec channels", audio_codec.config.audio_channels, spec.audio_channels),
        ]
    wrong = [f"{what} {found}, the footage {wanted}" for what, found, wanted in sizes if found != wanted]
    if wrong:
        raise ValueError(
            f"codecs folder {str(folder)!r} does not fit the footage spec ({'; '.join(wrong)}): "
            "give the codecs of the model you train, and scan the footage with FootageSpec.from_model_folder(that model)"
        )
    if audio_codec is not None:
        audio_latents_per_frame(video_codec, audio_codec, spec.fps, spec.sample_rate)  # a latent frame must span whole audio latents
    return folder


def load_footage_codecs(folder: Path, spec: FootageSpec, device: str | torch.device = "cpu") -> tuple[VideoCodec, AudioCodec | None]:
    """(video codec, audio codec or None for a video-only spec) in eval mode on `device`.

    On the "meta" device, the codecs as their configs build them, without reading any weights.
    """

    def build(codec_class, name: str):
        if torch.device(device).type == "meta":
            with torch.device("meta"):
                return codec_class.from_config(codec_class.load_config(folder / name))
        return codec_class.from_pretrained(folder / name).eval().to(device)

    return build(VideoCodec, "vae"), build(AudioCodec, "audio_codec") if spec.require_audio else None


def clip_key(content: str, encoders: dict, spec: FootageSpec, clip: FootageClip) -> str:
    """The cache key of a clip: its file's content digest, the encoders' digests and the clip layout."""
    layout = {"decoding": DECODING, "spec": asdict(spec), "start_seconds": clip.start_seconds}
    key = json.dumps({"content": content, "encoders": encoders, "layout": layout}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()


def file_digest(path: Path, memo_dir: Path) -> str:
    """sha256 of a file's bytes, read in blocks once per version of the file.

    The digest is remembered in `memo_dir` against the file's absolute path, size, mtime and ctime:
    a rerun costs a stat, and any write (even one that puts the mtime back) changes the ctime and
    has the file read again.
    """
    path = path.resolve()
    stat = path.stat()
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns}
    memo = memo_dir / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get("stamp") == stamp:
        return known["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    remembered = json.dumps({"stamp": stamp, "sha256": digest.hexdigest()})
    _write_atomically(memo, lambda temporary: temporary.write_text(remembered))
    return digest.hexdigest()


def _failed(path: Path) -> Path:
    return path.with_suffix(".failed")


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(temporary path)`, then rename: readers and resumed runs see the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique across processes and hosts sharing the cache; hidden, so nothing lists it as a clip.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
