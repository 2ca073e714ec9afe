"""Training data: world clips encoded once by the trained codecs, kept on disk as latents.

The generator trains in latent space, so every stage reads the same cached latents: video
(N, C, F, h, w) and audio (N, C, 8 F), normalised by the codecs' latent mean/std, with the
clips' prompts. The cache key covers what decides the latents (the codecs' encoders and
configs, latent statistics included), the world and the clip layout, so retrained codecs never
feed stale latents, and a codec whose decoder alone was retrained reuses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from avgen.codecs.av import encode_clip
from avgen.codecs.loading import ENCODER_MODULES, load_codecs, missing_codec
from avgen.data.sample import pixel_frames
from avgen.training.config import ConfigError
from avgen.world import WorldConfig, WorldDataset, default_cache_dir

ENCODE_BATCH = 8


def require_codecs(folder: str | Path, audio: bool = True) -> Path:
    """The codecs folder named by the config, or an error naming the key; audio=False asks for vae/ alone."""
    missing = missing_codec(folder)
    if missing is not None and (audio or missing == "vae"):  # missing_codec names vae/ first
        raise ConfigError(
            f"codecs folder {str(folder)!r} has no {missing}/: point 'codecs' at trained codecs "
            "(python train/codecs.py writes them)"
        )
    return Path(folder)


def encoding_digest(folder: Path) -> str:
    """A digest of what a codec folder's encoding depends on: its encoder's tensors and its config.

    Shared by every latent cache (the world's here, footage's in footage_latents.py).
    """
    digest = hashlib.sha256()
    config = json.loads((folder / "config.json").read_text())
    digest.update(json.dumps({k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True).encode())
    with safe_open(folder / "diffusion_pytorch_model.safetensors", framework="pt") as tensors:
        for name in sorted(tensors.keys()):
            if name.split(".")[0] in ENCODER_MODULES:
                digest.update(name.encode())
                digest.update(tensors.get_tensor(name).contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LatentClips:
    """`clips` training clips of `chunks` chunks each, as latents (see the module docstring).

    Attributes:
        video: (N, Cv, F, h, w) float32, F = chunks * chunk_frames latent frames.
        audio: (N, Ca, F * audio_latents_per_frame) float32.
        prompts: N strings.
    """

    def __init__(self, video: torch.Tensor, audio: torch.Tensor, prompts: list[str]):
        self.video, self.audio, self.prompts = video, audio, prompts

    def __len__(self) -> int:
        return len(self.prompts)

    def batch(self, indices: list[int], device: torch.device) -> dict:
        return {
            "video": self.video[indices].to(device),
            "audio": self.audio[indices].to(device),
            "prompts": [self.prompts[i] for i in indices],
        }

    @staticmethod
    def cache_path(codecs: str | Path, clips: int, latent_frames: int, cache_dir: str | Path | None, seed: int) -> Path:
        codecs = require_codecs(codecs)
        key = json.dumps(
            {
                "vae": encoding_digest(codecs / "vae"),
                "audio_codec": encoding_digest(codecs / "audio_codec"),
                "world": WorldConfig().fingerprint(),
                "clips": clips,
                "latent_frames": latent_frames,
                "seed": seed,
            },
            sort_keys=True,
        )
        folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir().parent / "latents"
        return folder / f"latents-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"

    @classmethod
    def load_or_encode(
        cls, codecs: str | Path, clips: int, latent_frames: int, cache_dir: str | Path | None = None, seed: int = 0, progress: bool = True
    ) -> LatentClips:
        """Latents of `clips` training clips of `latent_frames` latent frames, encoded on first use."""
        path = cls.cache_path(codecs, clips, latent_frames, cache_dir, seed)
        if path.is_file():
            tensors = load_file(path)
            with open(path.with_suffix(".json")) as handle:
                prompts = json.load(handle)
            return cls(tensors["video"], tensors["audio"], prompts)
        latents = cls.encode(codecs, clips, latent_frames, cache_dir, seed, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        save_file({"video": latents.video.contiguous(), "audio": latents.audio.contiguous()}, partial)
        path.with_suffix(".json").write_text(json.dumps(latents.prompts))
        partial.rename(path)  # the tensors appear last, so a found cache is always whole
        return latents

    @classmethod
    @torch.no_grad()
    def encode(cls, codecs, clips: int, latent_frames: int, cache_dir=None, seed: int = 0, progress: bool = True) -> LatentClips:
        video_codec, audio_codec = load_codecs(require_codecs(codecs))
        world = WorldConfig()
        frames = pixel_frames(latent_frames, video_codec.temporal_compression)
        dataset = WorldDataset("train", num_clips=clips, seconds=frames / world.fps, cache_dir=cache_dir or default_cache_dir(), seed=seed)
        videos, audios, prompts = [], [], []
        for start in tqdm(range(0, clips, ENCODE_BATCH), desc="encoding clips", unit="batch", disable=not progress):
            items = [dataset[i] for i in range(start, min(start + ENCODE_BATCH, clips))]
            video, audio = encode_clip(
                video_codec, audio_codec,
                torch.stack([item["video"] for item in items]), torch.stack([item["audio"] for item in items]),
                world.fps, world.sample_rate,
            )  # fmt: skip
            videos.append(video)
            audios.append(audio)
            prompts.extend(item["prompt"] for item in items)
        return cls(torch.cat(videos), torch.cat(audios), prompts)
