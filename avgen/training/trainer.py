"""The training loop every stage shares.

    Trainer(load_config("train/configs/pretrain.yaml", stage="pretrain")).run()

AdamW with warm-up + cosine, gradient clipping, optional EMA and gradient checkpointing,
bf16 autocast on CUDA, a progress bar, metrics per step in OUTPUT_DIR/metrics.jsonl and
checkpoints in OUTPUT_DIR/checkpoints/step-N (safetensors weights + optimizer state).
`resume=True` continues from the newest checkpoint; because every step's data and noise
derive from (seed, step), a resumed run repeats exactly what the killed one would have done.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from avgen.text import TEXT_ENCODERS, is_trained_by_avgen, text_encoder_class
from avgen.training.config import ConfigError, TrainingConfig
from avgen.training.distributed import Processes, start, stop
from avgen.training.ema import EMA
from avgen.training.generator import Generator
from avgen.training.footage_latents import FootageLatents
from avgen.training.latents import LatentClips
from avgen.training.metrics_log import truncate_after
from avgen.training.objectives import OBJECTIVES, Draws
from avgen.training.schedule import warmup_cosine

STATE = "state.json"


def checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints of a run folder, oldest first."""
    found = [path for path in (run / "checkpoints").glob("step-*") if (path / STATE).is_file()]
    return sorted(found, key=lambda path: int(path.name.split("-")[1]))


def resolve_weights(path: str | Path) -> Path:
    """A run folder -> its newest checkpoint; a checkpoint or pipeline folder -> itself."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"init path {str(path)!r} not found")
    if (path / "checkpoints").is_dir():
        found = checkpoints(path)
        if not found:
            raise ConfigError(f"run folder {str(path)!r} has no complete checkpoint yet")
        return found[-1]
    return path


class Trainer:
    def __init__(self, config: TrainingConfig, resume: bool = False, progress: bool = True):
        self.config = config
        self.processes: Processes = start(config)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.run_dir = Path(config.output_dir)
        self.progress = progress and self.processes.is_main
        self._order: tuple[int, list[int]] = (-1, [])  # (epoch, its shuffled order of the clips)

        if config.init:
            weights = resolve_weights(config.init)
            generator = Generator.from_folder(weights, config.preset, new_text_encoder=config.text_encoder)
            if self.processes.is_main and not is_trained_by_avgen(weights / "text_encoder"):
                print(f"{config.init}: its {text_encoder_class(weights / 'text_encoder')} text encoder is replaced by a new "
                      f"{config.text_encoder!r} one (config key text_encoder)", flush=True)  # fmt: skip
        else:
            generator = Generator.from_preset(config.preset or "tiny", config.text_encoder)
        self.data = self._load_data(generator.transformer.config.chunk_frames)
        if config.audio_tower is not None:
            generator = self._with_audio_tower(generator)
        teacher = None
        if config.stage == "text_encoder":  # init's model is the teacher; a copy of it gets the new encoder
            teacher = generator.to(self.processes.device).eval().requires_grad_(False)
            generator = Generator(
                copy.deepcopy(teacher.transformer), TEXT_ENCODERS[config.text_encoder](dim=teacher.transformer.config.text_dim)
            )
            generator.train_text_path_only()
        self._check_channels(generator.transformer)
        if config.stage == "couple" and config.condition_probability > 0:
            generator.transformer.register_to_config(audio_conditioning=True)
        if config.stage == "rolling" and config.dub_probability > 0:
            generator.transformer.register_to_config(video_conditioning=True)
        if config.stage == "rolling" and config.drive_probability > 0:
            generator.transformer.register_to_config(audio_conditioning=True)
        if config.gradient_checkpointing:
            generator.transformer.enable_gradient_checkpointing()
        if config.video_learning_rate_scale == 0 and generator.transformer.video is not None:
            generator.transformer.video.requires_grad_(False)
        # Training weights are float32 whatever a converted folder was saved in (CUDA autocasts to bf16).
        self.generator = generator.float().to(self.processes.device).train()
        self.ema = EMA(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        target = teacher if teacher is not None else (self.ema.shadow if config.ema_target else None)
        self.objective = OBJECTIVES[config.stage](self.generator, config, target)
        self.step = 0
        latest = self._resume_weights() if resume else None
        # Stage 1 never runs the fusion layers (nor a tower left out of `modalities`).
        self.model = self.processes.wrap(self.objective, config.parallel, unused_parameters=config.stage == "pretrain")
        # After wrapping: FSDP2 replaces the parameters with shards, and the optimizer must hold those.
        self.optimizer = torch.optim.AdamW(self._parameter_groups(), lr=config.learning_rate, weight_decay=config.weight_decay)
        if latest is not None:
            state = torch.load(latest / "optimizer.pt", map_location=self.processes.device, weights_only=True)
            self.processes.load_optimizer_state(self.generator, self.optimizer, state)

    # ------------------------------------------------------------------ setup

    def _load_data(self, chunk_frames: int) -> LatentClips | FootageLatents:
        config = self.config
        latent_frames = config.clip_chunks * chunk_frames
        if config.data is not None:
            return self._load_footage(latent_frames)
        arguments = (config.codecs, config.clips, latent_frames, config.cache_dir, config.seed)
        if self.processes.is_main:  # one process encodes; the others read its cache
            data = LatentClips.load_or_encode(*arguments, progress=self.progress)
        self.processes.barrier()
        if not self.processes.is_main:
            data = LatentClips.load_or_encode(*arguments, progress=False)
        return data

    def _load_footage(self, latent_frames: int) -> FootageLatents:
        """The footage folder's clips of `latent_frames`, each process encoding its share once."""
        from avgen.data.footage import FootageSpec, scan_footage

        config, processes = self.config, self.processes
        try:
            index = scan_footage(config.data, FootageSpec.from_model_folder(config.codecs, latent_frames=latent_frames))
        except ValueError as error:
            raise ConfigError(f"config key 'data': {error}") from None
        if not index.clips:
            reasons = "; ".join(f"{skipped.path}: {skipped.reason}" for skipped in index.skipped[:3])
            raise ConfigError(f"config key 'data': {config.data!r} has no usable clip ({reasons}); run avgen footage check on it")
        return FootageLatents.load_or_encode(
            index, config.codecs, config.cache_dir, rank=processes.rank, world_size=processes.world_size, progress=self.progress
        )

    def _with_audio_tower(self, generator: Generator) -> Generator:
        """`audio_tower`: a video-only model grown by an audio tower sized to the data's audio latents."""
        from avgen.models.presets import preset_config

        config, transformer = self.config, generator.transformer
        if "audio" in transformer.modalities:
            raise ConfigError(f"config key 'audio_tower': the model of {config.init!r} has an audio tower already; remove the key")
        if self.data.audio is None:
            raise ConfigError(f"config key 'audio_tower': the codecs in {config.codecs!r} have no audio_codec/ to give the tower its latents")
        audio = preset_config(config.audio_tower)
        grown = transformer.extended(
            modalities=("video", "audio"),
            fusion=True,
            step_conditioning=True,
            audio_in_channels=self.data.audio.shape[1],
            audio_latents_per_frame=self.data.audio.shape[-1] // self.data.video.shape[2],
            **{key: audio[key] for key in ("audio_dim", "audio_num_heads", "audio_ffn_dim", "audio_patch_size")},
        )
        return Generator(grown, generator.text_encoder)

    def _check_channels(self, transformer) -> None:
        for kind in transformer.modalities:
            latents = getattr(self.data, kind)
            got, takes = latents.shape[1] if latents is not None else 0, transformer.config[f"{kind}_in_channels"]
            if got != takes:
                raise ConfigError(
                    f"the codecs in {self.config.codecs!r} give {got} {kind} latent channels, the model takes {takes}: "
                    "check 'codecs', 'preset' and 'init'"
                )

    def _parameter_groups(self) -> list[dict]:
        """The video tower at `video_learning_rate_scale` of the learning rate, the rest at the full rate."""
        video = self.generator.transformer.video
        video_ids = {id(parameter) for parameter in video.parameters()} if video is not None else set()
        trained = [parameter for parameter in self.generator.parameters() if parameter.requires_grad]
        groups = [
            {"params": [p for p in trained if id(p) not in video_ids], "lr_scale": 1.0},
            {"params": [p for p in trained if id(p) in video_ids], "lr_scale": self.config.video_learning_rate_scale},
        ]
        return [group for group in groups if group["params"]]

    def _resume_weights(self) -> Path | None:
        """Load the newest checkpoint's weights (the optimizer state follows once it exists)."""
        found = checkpoints(self.run_dir)
        if not found:
            print(f"no checkpoint in {self.run_dir}/checkpoints: starting at step 0", flush=True)
            return None
        latest = found[-1]
        self.generator.load_state_dict(Generator.from_folder(latest, self.config.preset).state_dict())
        if self.ema is not None and (latest / "ema").is_dir():
            self.ema.shadow.load_state_dict(Generator.from_folder(latest / "ema").state_dict())
        self.step = json.loads((latest / STATE).read_text())["step"]
        if self.processes.is_main:
            truncate_after(self.run_dir / "metrics.jsonl", self.step)
            print(f"resuming from {latest} at step {self.step}", flush=True)
        return latest

    # ------------------------------------------------------------------ the loop

    def batch_indices(self, step: int) -> list[int]:
        """The global batch of `step`: the next places in a shuffled order of the clips, so that every
        clip is seen once per epoch, whatever the number of processes sharing the batch."""
        size, count = self.config.batch_size, len(self.data)
        places = [divmod(position, count) for position in range(step * size, (step + 1) * size)]
        return [self._epoch_order(epoch)[place] for epoch, place in places]

    def _epoch_order(self, epoch: int) -> list[int]:
        if self._order[0] != epoch:
            generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.data), generator=generator).tolist())
        return self._order[1]

    def train_step(self) -> dict[str, float]:
        config, processes = self.config, self.processes
        lr = warmup_cosine(self.step, config.learning_rate, config.warmup_steps, config.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        local = processes.local_slice(config.batch_size)
        batch = self.data.batch(self.batch_indices(self.step)[local], processes.device)
        draws = Draws(config.seed, self.step, list(range(config.batch_size))[local], processes.device)
        began = time.perf_counter()
        autocast = config.bf16 and processes.device.type == "cuda"
        with torch.autocast(processes.device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, terms = self.model(batch, draws)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.generator)
        self.step += 1
        seconds = time.perf_counter() - began
        record = {"step": self.step, **processes.mean({"loss": loss, **terms}), "grad_norm": float(grad_norm), "lr": lr}
        record.update(seconds=round(seconds, 4), samples_per_second=round(config.batch_size / seconds, 3))
        if not all(math.isfinite(value) for key, value in record.items() if key != "step"):
            raise FloatingPointError(f"non-finite training metric at step {self.step}: {record}; lower learning_rate")
        return record

    def run(self) -> Path:
        """Train to config.stop_at (else config.steps); returns the newest checkpoint."""
        config = self.config
        last = config.stop_at or config.steps
        if self.processes.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(config.to_yaml())
        metrics = (self.run_dir / "metrics.jsonl").open("a") if self.processes.is_main else None
        bar = tqdm(total=last, initial=self.step, desc=f"training {config.stage}", unit="step", disable=not self.progress)
        try:
            while self.step < last:
                record = self.train_step()
                if metrics is not None:
                    metrics.write(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in record.items()}) + "\n")
                    metrics.flush()
                bar.update()
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                if self.step % config.checkpoint_every == 0 or self.step == last:
                    self.save_checkpoint()
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
            stop(self.processes)
        return checkpoints(self.run_dir)[-1]

    def save_checkpoint(self) -> None:
        """OUTPUT_DIR/checkpoints/step-N, written under a hidden name and renamed when whole."""
        processes = self.processes
        processes.barrier()
        weights = processes.full_state(self.generator)
        optimizer = processes.full_optimizer_state(self.generator, self.optimizer)
        if processes.is_main:
            folder = self.run_dir / "checkpoints"
            partial = folder / f".step-{self.step}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            (Generator.like(self.generator, weights) if processes.sharded else self.generator).save(partial)
            if self.ema is not None:
                self.ema.shadow.save(partial / "ema")
            torch.save(optimizer, partial / "optimizer.pt")
            (partial / STATE).write_text(json.dumps({"step": self.step, "stage": self.config.stage}))
            final = folder / f"step-{self.step}"
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
            for old in checkpoints(self.run_dir)[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
        processes.barrier()
