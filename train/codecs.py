r"""Train the tiny streaming codecs on world clips and save them in diffusers layout.

    python train/codecs.py --codec video --steps 3000 --out weights/avgen-tiny
    python train/codecs.py --codec audio --steps 3000 --out weights/avgen-tiny
    python train/codecs.py --codec audio --init weights/avgen-tiny/audio_codec --freeze-encoder \
        --envelope-weight 1 --clip-frames 33 --learning-rate 1e-4 --steps 500 --out runs/audio-decoder
        (the decoder alone: the latents, and a generator trained on them, stay valid)
    python train/codecs.py --codec video --init weights/avgen-tiny/vae --freeze-encoder \
        --decoder-width 16 --clip-frames 17 --steps 2000 --out runs/video-decoder-16
        (a new, wider video decoder, trained from scratch on the frozen encoder's latents)
    python train/codecs.py --codec video --latent-channels 16 --clip-frames 17 --steps 3000 --out runs/video-codec-z16
        (a fresh video codec whose latents keep 16 channels instead of the preset's 8)
    python train/codecs.py --codec video --init weights/avgen-tiny/vae --clip-frames 17 \
        --learning-rate 5e-5 --motion-weight 4 --steps 3000 --out runs/video-codec-joint
        (encoder and decoder trained on at a low rate: the latents move a little, which
        `avgen eval codecs --reference weights/avgen-tiny` measures)

Each run checkpoints every --checkpoint-every steps under OUT/checkpoints/CODEC (weights as
safetensors, optimizer state beside them) and continues from the newest one with --resume.
At the end the codec's latent mean/std per channel are measured on training clips and
written into its config, and the codec is saved to OUT/vae or OUT/audio_codec.
Metrics (loss, reconstruction terms, learning rate) go to OUT/checkpoints/CODEC/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from avgen.codecs import AudioCodec, VideoCodec  # noqa: E402
from avgen.codecs.loading import ENCODER_MODULES  # noqa: E402
from avgen.codecs.losses import envelope_decorrelation, multi_resolution_stft_distance, psnr  # noqa: E402
from avgen.codecs.presets import TINY_VIDEO, tiny_audio_codec, tiny_video_codec  # noqa: E402
from avgen.training.metrics_log import truncate_after  # noqa: E402
from avgen.training.motion import motion_loss_weight  # noqa: E402
from avgen.training.schedule import warmup_cosine  # noqa: E402
from avgen.world import WorldConfig, WorldDataset, default_cache_dir  # noqa: E402

SUBFOLDERS = {"video": "vae", "audio": "audio_codec"}


@dataclass
class CodecTrainingConfig:
    codec: str = "video"  # "video" or "audio"
    steps: int = 3000
    batch_size: int = 4
    clip_frames: int = 9  # 1 + 4k: two latent frames after the first
    clips: int = 4096  # distinct training clips (rendered once, then cached)
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.0
    kl_weight: float = 1e-6
    # Decode a sample of the posterior (a VAE) or its mean (an autoencoder whose tiny KL term
    # only bounds the latent scale). Sampling stalled the video codec at 14 dB for 150 steps.
    sample_posterior: bool = False
    stft_weight: float = 1.0  # audio: multi-resolution STFT term beside the waveform L1
    envelope_weight: float = 0.0  # audio: speech-envelope term, what the sync metric reads
    # Train the decoder only: the latents, and so a generator trained on them, stay valid.
    freeze_encoder: bool = False
    motion_weight: float = 0.0  # video: see avgen/training/motion.py (what fixed the lip sync)
    grad_clip: float = 1.0
    checkpoint_every: int = 250
    threads: int = 1
    seed: int = 0
    out: str = "weights/avgen-tiny"
    cache_dir: str | None = None
    init: str | None = None  # start from an exported codec folder (e.g. weights/avgen-tiny/vae)
    latent_channels: int | None = None  # video, a fresh codec: latent channels (the tiny preset's 8 when unset)
    decoder_width: int | None = None  # video: replace the init's decoder by a fresh one this wide (base channels)

    def __post_init__(self):
        if self.codec not in SUBFOLDERS:
            raise ValueError(f"codec must be one of {', '.join(SUBFOLDERS)}, got {self.codec!r}")
        if (self.clip_frames - 1) % 4:
            raise ValueError(f"clip_frames must be 1 + 4k, got {self.clip_frames}")
        if self.freeze_encoder and not self.init:
            raise ValueError("freeze_encoder fine-tunes a trained codec's decoder: give its folder with --init")
        if self.latent_channels is not None and (self.codec != "video" or self.init):
            raise ValueError("latent_channels sizes a fresh video codec (--codec video, no --init)")
        if self.latent_channels is not None and self.latent_channels < 1:
            raise ValueError(f"latent_channels is a channel count, at least 1; got {self.latent_channels}")
        if self.decoder_width is not None and (self.codec != "video" or not self.init):
            raise ValueError("decoder_width gives a trained video codec (--codec video --init FOLDER) a new decoder")
        if self.decoder_width is not None and self.decoder_width < 1:
            raise ValueError(f"decoder_width is a channel count, at least 1; got {self.decoder_width}")


def learning_rate(config: CodecTrainingConfig, step: int) -> float:
    return warmup_cosine(step, config.learning_rate, config.warmup_steps, config.steps)


def batches(config: CodecTrainingConfig, dataset: WorldDataset, start_step: int):
    """Endless shuffled batches of (video (B, 3, F, H, W), audio (B, 1, S)), reproducible per step."""
    step = start_step
    while True:
        generator = torch.Generator().manual_seed(config.seed * 100_003 + step)
        indices = torch.randint(len(dataset), (config.batch_size,), generator=generator).tolist()
        items = [dataset[i] for i in indices]
        yield torch.stack([item["video"] for item in items]), torch.stack([item["audio"] for item in items])
        step += 1


def reconstruction_loss(config: CodecTrainingConfig, codec, video: torch.Tensor, audio: torch.Tensor) -> dict:
    if config.codec == "video":
        posterior = codec.encode(video).latent_dist
        latents = posterior.sample() if config.sample_posterior else posterior.mode()
        # Unclamped decode (diffusers' decode clamps, which zeroes the gradient of overshooting
        # pixels and stalled training). Normalisation is the identity until training ends.
        decoded = codec.stream().decode(latents, clamp=False)
        weight = motion_loss_weight(video, config.motion_weight)
        terms = {
            "mse": (weight * (decoded - video) ** 2).mean(),
            "l1": (weight * (decoded - video).abs()).mean(),
            "kl": posterior.kl().mean(),
        }
        terms["loss"] = terms["mse"] + 0.5 * terms["l1"] + config.kl_weight * terms["kl"]
        terms["psnr"] = psnr(decoded.detach(), video).mean()
    else:
        posterior = codec.encode(audio).latent_dist
        decoded = codec.decode(posterior.sample() if config.sample_posterior else posterior.mode()).sample
        world = WorldConfig()
        terms = {
            "l1": (decoded - audio).abs().mean(),
            "stft": multi_resolution_stft_distance(decoded, audio),
            "envelope": envelope_decorrelation(decoded, audio, world.sample_rate, world.samples_per_frame // 2),
            "kl": posterior.kl().mean(),
        }
        terms["loss"] = (
            terms["l1"] + config.stft_weight * terms["stft"] + config.envelope_weight * terms["envelope"] + config.kl_weight * terms["kl"]
        )
    return terms


def trainable_parameters(config: CodecTrainingConfig, codec) -> list[torch.nn.Parameter]:
    """The parameters to train: all of them, or with `freeze_encoder` all but the encoder's (frozen in place)."""
    if config.freeze_encoder:
        for name in ENCODER_MODULES:
            if hasattr(codec, name):
                getattr(codec, name).requires_grad_(False)
    return [parameter for parameter in codec.parameters() if parameter.requires_grad]


def with_new_decoder(codec: VideoCodec, width: int) -> VideoCodec:
    """`codec`'s encoder (same latents) with a freshly initialised decoder of base width `width`."""
    fresh = VideoCodec.from_config({**codec.config, "decoder_base_dim": width})
    for name in ENCODER_MODULES:
        getattr(fresh, name).load_state_dict(getattr(codec, name).state_dict())
    return fresh


def latest_checkpoint(folder: Path) -> Path | None:
    steps = sorted(folder.glob("step-*"), key=lambda path: int(path.name.split("-")[1]))
    return steps[-1] if steps else None


def reset_normalisation(config: CodecTrainingConfig, codec) -> None:
    """Identity latent normalisation (the measured one is written at the end of training)."""
    if config.codec == "video":
        codec.register_to_config(latents_mean=[0.0] * codec.config.z_dim, latents_std=[1.0] * codec.config.z_dim)
    else:
        codec.register_to_config(latents_mean=None, latents_std=None)


@torch.no_grad()
def measure_latent_statistics(config: CodecTrainingConfig, codec, dataset: WorldDataset, clips: int = 64) -> None:
    """Per-channel mean/std of the posterior means over `clips` training clips, written into the config."""
    reset_normalisation(config, codec)  # measure raw posterior means
    latents = []
    for index in range(min(clips, len(dataset))):
        item = dataset[index]
        if config.codec == "video":
            latents.append(codec.encode_latents(item["video"][None]).transpose(0, 1).flatten(1))  # (C, N)
        else:
            latents.append(codec.encode_latents(item["audio"][None]).transpose(0, 1).flatten(1))
    stacked = torch.cat(latents, dim=1)
    codec.register_to_config(latents_mean=stacked.mean(1).tolist(), latents_std=stacked.std(1).clamp_min(1e-3).tolist())


def train(config: CodecTrainingConfig, resume: bool) -> Path:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    folder = out / "checkpoints" / config.codec
    folder.mkdir(parents=True, exist_ok=True)
    dataset = WorldDataset(
        "train",
        num_clips=config.clips,
        seconds=config.clip_frames / WorldConfig().fps,
        cache_dir=config.cache_dir or default_cache_dir(),
        seed=config.seed,
    )
    codec_class = VideoCodec if config.codec == "video" else AudioCodec
    codec = tiny_video_codec(config.latent_channels or TINY_VIDEO["z_dim"]) if config.codec == "video" else tiny_audio_codec()
    if config.init:
        codec = codec_class.from_pretrained(config.init)
        if config.decoder_width is not None:
            codec = with_new_decoder(codec, config.decoder_width)
        reset_normalisation(config, codec)  # training works on raw latents
    optimizer = torch.optim.AdamW(trainable_parameters(config, codec), lr=config.learning_rate, weight_decay=config.weight_decay)
    start = 0
    checkpoint = latest_checkpoint(folder) if resume else None
    if checkpoint is not None:
        codec = codec_class.from_pretrained(checkpoint)
        optimizer = torch.optim.AdamW(trainable_parameters(config, codec), lr=config.learning_rate, weight_decay=config.weight_decay)
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
        start = json.loads((checkpoint / "state.json").read_text())["step"]
        print(f"resuming from {checkpoint} at step {start}", file=sys.stderr)
        truncate_after(folder / "metrics.jsonl", start)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    codec.train()
    metrics = (folder / "metrics.jsonl").open("a")
    data = batches(config, dataset, start)
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc=f"training {config.codec} codec")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        video, audio = next(data)
        began = time.perf_counter()
        terms = reconstruction_loss(config, codec, video, audio)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], config.grad_clip)
        optimizer.step()
        record = {name: round(float(value.detach()), 6) for name, value in terms.items()}
        record.update(step=step + 1, lr=learning_rate(config, step), grad_norm=round(float(norm), 4), seconds=round(time.perf_counter() - began, 3))
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        bar.set_postfix({key: record[key] for key in ("loss", "psnr") if key in record})
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            target = folder / f"step-{step + 1}"
            codec.save_pretrained(target)
            torch.save(optimizer.state_dict(), target / "optimizer.pt")
            (target / "state.json").write_text(json.dumps({"step": step + 1}))
    metrics.close()
    codec.eval()
    if config.freeze_encoder:  # the init's encoder, so the init's latent statistics: the generator's latents stay as they were
        init = codec_class.load_config(config.init)
        codec.register_to_config(latents_mean=init["latents_mean"], latents_std=init["latents_std"])
    else:
        measure_latent_statistics(config, codec, dataset)
    destination = out / SUBFOLDERS[config.codec]
    codec.save_pretrained(destination)
    return destination


def parse_args(argv: list[str] | None = None) -> tuple[CodecTrainingConfig, bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = CodecTrainingConfig()
    hints = typing.get_type_hints(CodecTrainingConfig)
    for field in dataclasses.fields(CodecTrainingConfig):
        value = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=f"default: {value}")
        else:
            # optional fields (X | None) parse as X
            kind = type(value) if value is not None else next(t for t in typing.get_args(hints[field.name]) if t is not type(None))
            parser.add_argument(flag, type=kind, default=value, help=f"default: {value}")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    try:
        return CodecTrainingConfig(**args), resume
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    config, resume = parse_args()
    print(f"saved {train(config, resume)}")
