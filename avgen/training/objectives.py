"""The losses of the four training stages (DESIGN.md, "Training").

Flow matching everywhere: x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0 when told
step size d = 0 (multi-step mode) and the average velocity of a jump t -> t - d when d > 0
(few-step mode). Each stage is an `Objective` module so that one DDP/FSDP wrapper sees every
forward of a step (rollouts included) and one backward follows:

1. `pretrain`: each tower alone, independent noise level per chunk, teacher forcing on
   the clean clip through the block-causal mask.
2. `couple`: both towers + fusion on paired clips; optionally one modality given clean
   (t = 0, no loss on it) so that audio-driven video and video-to-audio work.
3. `mutual_forcing`: a history of k chunks rolled out by the model itself in few-step mode
   (no gradient; a share of steps uses the real clip), then on the next real chunk, read
   against that cache: the multi-step flow-matching loss, and few-step self-distillation
   (a jump d matched to two jumps d/2 of the same weights, or to Euler steps of the
   multi-step mode with `distill_teacher_step`; no gradient through the target).
4. `rolling`: the clip rolled out with the rolling window (levels staggered by one step);
   at one of the non-overlapping full windows the same two losses are taken on the whole
   window at its mixed noise levels, so memory holds one window's graph, not the clip's.
   A share of steps (`chunkwise_probability`) rolls out chunk by chunk instead and takes the
   losses on one chunk at one of its levels; another (`opening_probability`) takes them
   while chunk 0 is denoised, where the prompt alone sets the character; another
   (`dub_probability`) is rolled out with the real video given clean at t = 0, only its audio
   denoised, and takes the audio's losses alone: voicing a given video (dubbing) in both modes;
   its mirror (`drive_probability`) gives the real audio and trains the video alone: a mouth
   made for a given voice, the path that carries the voice into the lips.

In every stage a share of samples (`prompt_dropout`) trains with the empty prompt: the
unconditional mode of classifier-free guidance.

All randomness comes from `Draws`: step-level choices shared by every process and a
generator per sample keyed by its place in the global batch, so a torchrun job draws the
same numbers as one process with the same global batch.
"""

from __future__ import annotations

import math
import random

import torch
from torch import nn

from avgen.models.kv_cache import KVCache
from avgen.rollout import Denoiser, LatentChunk, rollout, voice_push, window_arguments
from avgen.scheduler import FlowMatchShortcutScheduler
from avgen.training.config import TrainingConfig
from avgen.training.generator import Generator
from avgen.training.motion import motion_loss_weight
from avgen.world.paraphrase import paraphrase_prompt


def _mix(*numbers: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), stable across processes and runs."""
    state = 0x9E3779B97F4A7C15
    for number in numbers:
        state = (state ^ (number & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 31
    return state & 0x7FFFFFFFFFFFFFFF


class Draws:
    """Random numbers of one training step: `shared` by all processes, and one generator per sample."""

    def __init__(self, seed: int, step: int, sample_ids: list[int], device: torch.device):
        self.shared = torch.Generator().manual_seed(_mix(seed, step, -1))
        self.samples = [torch.Generator().manual_seed(_mix(seed, step, i)) for i in sample_ids]
        self.device = device

    def normal(self, *shape: int) -> torch.Tensor:
        """(B, *shape) standard normal, each sample from its own generator."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.samples]).to(self.device)

    def uniform(self, *shape: int) -> torch.Tensor:
        return torch.stack([torch.rand(shape, generator=g) for g in self.samples]).to(self.device)

    def shared_int(self, low: int, high: int) -> int:
        """An integer in [low, high), the same on every process."""
        return int(torch.randint(low, high, (), generator=self.shared))

    def shared_bool(self, probability: float) -> bool:
        return bool(torch.rand((), generator=self.shared) < probability)


# ---------------------------------------------------------------------- shapes and helpers


def chunk_slice(latents: torch.Tensor, start: int, stop: int, per_chunk: int) -> torch.Tensor:
    """Chunks [start, stop) of latents whose time axis is dim 2 with `per_chunk` entries per chunk."""
    return latents[:, :, start * per_chunk : stop * per_chunk]


def per_position(levels: torch.Tensor, per_chunk: int, ndim: int) -> torch.Tensor:
    """(B, Nc) per-chunk values -> broadcastable to latents with `ndim` dims, time axis 2."""
    expanded = levels.repeat_interleave(per_chunk, dim=1)[:, None]  # (B, 1, Nc * per_chunk)
    return expanded.reshape(*expanded.shape, *([1] * (ndim - 3)))


def jump_sizes(draws: Draws, min_step: float) -> torch.Tensor:
    """(B,) jump sizes d = 2^-j between `min_step` and 1, one per sample."""
    largest = int(math.floor(-math.log2(min_step) + 1e-9))
    return 2.0 ** -torch.floor(draws.uniform() * (largest + 1))


def per_sample_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) mean squared error per sample; `weight` (broadcast to the error) weighs its positions."""
    error = (prediction.float() - target.float()).pow(2)
    if weight is not None:
        error = error * weight
    return error.flatten(1).mean(1)


class Objective(nn.Module):
    """One stage's loss; forward(batch, draws) -> (loss, {metric: value})."""

    def __init__(self, generator: Generator, config: TrainingConfig, target: Generator | None = None):
        super().__init__()
        self.generator = generator
        self.config = config
        # The distillation target's weights (EMA) are not trained, so they are not a submodule.
        self._target = [target] if target is not None else []
        model = generator.transformer.config
        self.frames_per_chunk = model.chunk_frames
        self.audio_per_chunk = model.chunk_frames * model.audio_latents_per_frame

    @property
    def transformer(self):
        return self.generator.transformer

    @property
    def target_transformer(self):
        return self._target[0].transformer if self._target else self.generator.transformer

    def per_chunk(self, kind: str) -> int:
        return self.frames_per_chunk if kind == "video" else self.audio_per_chunk

    def video_weight(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, h, w) flow-matching weights of a clean latent clip (1 + motion_weight * its motion)."""
        return motion_loss_weight(video, self.config.motion_weight)

    def noised(self, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, kind: str) -> torch.Tensor:
        """x_t of every chunk at its own level t (B, Nc)."""
        return FlowMatchShortcutScheduler.add_noise(clean, noise, per_position(t, self.per_chunk(kind), clean.ndim))

    def forward(self, batch: dict, draws: Draws) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.config.prompt_dropout > 0:  # drawn only when asked for, like the openings
            dropped = draws.uniform() < self.config.prompt_dropout  # (B,)
            batch = {**batch, "prompts": ["" if drop else prompt for prompt, drop in zip(batch["prompts"], dropped)]}
        losses = self.losses(batch, draws)
        total = sum(weight * value for weight, value in losses.values())
        # A term at weight 0 (a given modality's) is in the graph but not trained: not logged.
        return total, {name: value.detach() for name, (weight, value) in losses.items() if weight != 0}

    def losses(self, batch: dict, draws: Draws) -> dict[str, tuple[float, torch.Tensor]]:
        """{name: (weight, scalar)}; names are "<mode>_<modality>" (fm: flow matching, sd: self-distillation, keep: the multi-step mode held)."""
        raise NotImplementedError


# ---------------------------------------------------------------------- stages 1 and 2


class Pretrain(Objective):
    """Stage 1: each tower alone with teacher forcing (fusion is not used)."""

    def losses(self, batch, draws):
        embeds = self.generator.embed(batch["prompts"])
        losses = {}
        for kind in self.config.modalities:
            clean = batch[kind]
            num_chunks = clean.shape[2] // self.per_chunk(kind)
            t = draws.uniform(num_chunks)  # (B, Nc): independent noise level per chunk
            noise = draws.normal(*clean.shape[1:])
            prediction = self.transformer(
                **{kind: self.noised(clean, noise, t, kind), f"timestep_{kind}": t, f"context_{kind}": clean},
                encoder_hidden_states=embeds,
            )[kind]  # fmt: skip
            weight = self.video_weight(clean) if kind == "video" else None
            losses[f"fm_{kind}"] = (1.0, per_sample_mse(prediction, noise - clean, weight).mean())
        return losses


class Couple(Objective):
    """Stage 2: both towers and fusion; with `condition_probability` one modality is given clean."""

    def losses(self, batch, draws):
        embeds = self.generator.embed(batch["prompts"])
        video, audio = batch["video"], batch["audio"]
        num_chunks = video.shape[2] // self.frames_per_chunk
        t_video, t_audio = draws.uniform(num_chunks), draws.uniform(num_chunks)
        noise_video, noise_audio = draws.normal(*video.shape[1:]), draws.normal(*audio.shape[1:])
        u = draws.uniform()  # (B,): which modality, if any, is given clean
        p = self.config.condition_probability
        audio_given, video_given = u < p / 2, (u >= p / 2) & (u < p)
        t_audio = torch.where(audio_given[:, None], 0.0, t_audio)
        t_video = torch.where(video_given[:, None], 0.0, t_video)
        output = self.transformer(
            video=self.noised(video, noise_video, t_video, "video"),
            audio=self.noised(audio, noise_audio, t_audio, "audio"),
            timestep_video=t_video, timestep_audio=t_audio,
            context_video=video, context_audio=audio,
            encoder_hidden_states=embeds,
        )  # fmt: skip
        # Normalised by the batch, not by the samples that count, so that the mean over
        # processes equals the mean over the global batch.
        return {
            "fm_video": (1.0, (per_sample_mse(output.video, noise_video - video, self.video_weight(video)) * ~video_given).mean()),
            "fm_audio": (1.0, (per_sample_mse(output.audio, noise_audio - audio) * ~audio_given).mean()),
        }


# ---------------------------------------------------------------------- stages 3 and 4


class SelfForcedObjective(Objective):
    """Shared by stages 3 and 4: rollouts of the model's own history and the two losses on a window."""

    def levels(self) -> torch.Tensor:
        return FlowMatchShortcutScheduler().levels(self.config.few_steps, device=self.transformer.device)

    def distill_steps(self, draws: Draws) -> torch.Tensor:
        return jump_sizes(draws, self.config.distill_min_step)

    def half_step(self, d: torch.Tensor) -> torch.Tensor:
        """The step-size input of a half jump: d / 2, or 0 (multi-step mode) below the smallest taught jump."""
        half = d / 2
        return torch.where(half >= self.config.distill_min_step - 1e-9, half, torch.zeros_like(half))

    def velocity(self, transformer, cache, video, audio, t, d, embeds, attention: str, given: str | None = None):
        """Velocities of a window of chunks read against `cache`; t, d: (B, Nc); `attention`: a
        window_attention name (avgen.rollout). A given modality is clean: t = d = 0."""
        cache.clear_text()  # text keys/values are recomputed so that they carry this call's gradient
        clean = (torch.zeros_like(t), torch.zeros_like(d))
        t_video, d_video = clean if given == "video" else (t, d)
        t_audio, d_audio = clean if given == "audio" else (t, d)
        output = transformer.forward_chunks(
            cache, video, audio, t_video, t_audio, d_video, d_audio, encoder_hidden_states=embeds, **window_arguments(attention)
        )
        return output.video, output.audio

    def guided_velocity(self, transformer, cache, video, audio, t, d, embeds, attention: str, given: str | None = None):
        """`velocity` with the picture guided by the voice as the sampler guides it
        (`audio_guidance_scale`): one more forward of the video tower alone, without the audio."""
        video_velocity, audio_velocity = self.velocity(transformer, cache, video, audio, t, d, embeds, attention, given)
        scale = self.config.audio_guidance_scale
        if scale == 1.0 or video is None or audio is None or given == "video":
            return video_velocity, audio_velocity
        alone, _ = self.velocity(transformer, cache, video, None, t, d, embeds, attention)
        push = voice_push(video_velocity, alone, self.config.audio_guidance_area)
        return video_velocity + (scale - 1.0) * push, audio_velocity

    def denoiser(self, embeds: torch.Tensor, window_attention: str = "joint") -> Denoiser:
        """The sampler's denoiser for the self-generated history, guided by the voice as the pipeline samples."""
        config = self.config
        return Denoiser(
            self.transformer, embeds, sink=config.sink_chunks, cache_window=config.cache_chunks, window_attention=window_attention,
            audio_guidance_scale=config.audio_guidance_scale, audio_guidance_area=config.audio_guidance_area,
        )  # fmt: skip

    def target_embeds(self, prompts: list[str], embeds: torch.Tensor) -> torch.Tensor:
        if not self._target:
            return embeds.detach()
        with torch.no_grad():
            return self._target[0].embed(prompts)

    def window_losses(
        self, cache: KVCache, noisy: tuple, real: tuple, video_weight, t, d, embeds, target_embeds, draws, attention: str,
        given: str | None = None,
    ) -> dict:  # fmt: skip
        """Both losses on a window read against the self-generated cache.

        Args:
            noisy: (video, audio) of the window as the few-step model sees it (self-generated).
            real: (video, audio) of the real chunks at the same places.
            video_weight: (B, 1, F, h, w) loss weights of the window's video positions, from the real clip.
            t, d: (B, Nc) levels and few-step jump sizes of the window's chunks.
            given: "video" or "audio" when that modality of the window is the real one, clean
                (dubbing, driving): it never moves, and its losses weigh 0 (kept in the graph, so
                that every parameter has a gradient under DDP; not logged).
        """
        kinds = ("video", "audio")
        targets = self.jump_target(cache, noisy, t, d, target_embeds, attention, given)
        # Drawn even with flow matching off, so that the draws after them do not depend on flow_weight.
        noises = [draws.normal(*x.shape[1:]) for x in real]
        terms = []
        if self.config.flow_weight > 0:  # at 0 its forward would only feed a loss weighed 0
            flow_inputs = [x if kind == given else self.noised(x, noise, t, kind) for x, noise, kind in zip(real, noises, kinds)]
            flow = self.velocity(self.transformer, cache, *flow_inputs, t, torch.zeros_like(t), embeds, attention, given)
            terms.append(("fm", flow, [noise - x for noise, x in zip(noises, real)], self.config.flow_weight))
        student = self.guided_velocity(self.transformer, cache, *noisy, t, d, embeds, attention, given)
        terms.append(("sd", student, targets, self.config.distill_weight))
        position_weights = {"video": video_weight, "audio": None}
        if self.config.keep_weight > 0:
            zero = torch.zeros_like(d)
            kept = self.velocity(self.transformer, cache, *noisy, t, zero, embeds, attention, given)
            with torch.no_grad():
                teacher = self.velocity(self.target_transformer, cache, *noisy, t, zero, target_embeds, attention, given)
            terms.append(("keep", kept, teacher, self.config.keep_weight))
        losses = {}
        for mode, predictions, goals, scale in terms:
            for kind, prediction, goal in zip(kinds, predictions, goals):
                loss = per_sample_mse(prediction, goal, position_weights[kind]).mean()
                losses[f"{mode}_{kind}"] = (0.0 if kind == given else scale, loss)
        return losses

    @torch.no_grad()
    def jump_target(self, cache: KVCache, noisy: tuple, t, d, target_embeds, attention: str, given: str | None) -> list:
        """[video, audio]: the average velocity of the jump t -> t - d, made in smaller moves by the target weights.

        `distill_teacher_step` 0 (the shortcut ladder): two half jumps in few-step mode (step input
        d / 2, or 0 below `distill_min_step`), so each jump size learns from the next smaller one.
        `distill_teacher_step` s > 0: ceil(max(d) / s) Euler steps of the multi-step mode (step
        input 0), so every jump learns from the multi-step mode directly, past the ladder's rungs.
        """
        kinds = ("video", "audio")
        teacher_step = self.config.distill_teacher_step
        if teacher_step > 0:
            moves = max(1, math.ceil(float(d.max()) / teacher_step - 1e-6))
            step_input = torch.zeros_like(d)
        else:
            moves, step_input = 2, self.half_step(d)
        x, level, total = list(noisy), t, None
        for _ in range(moves):
            velocities = self.guided_velocity(self.target_transformer, cache, *x, level, step_input, target_embeds, attention, given)
            total = list(velocities) if total is None else [a + b for a, b in zip(total, velocities)]
            x = [x_ if kind == given else self.jump(x_, v, d / moves, kind) for x_, v, kind in zip(x, velocities, kinds)]
            level = level - d / moves
        return [velocity / moves for velocity in total]

    def jump(self, x: torch.Tensor, velocity: torch.Tensor, size: torch.Tensor, kind: str) -> torch.Tensor:
        """Every chunk of x moved along `velocity` by its own jump size, (B, Nc)."""
        return x - per_position(size, self.per_chunk(kind), x.ndim) * velocity

    def noise_fn(self, draws: Draws, batch: dict):
        video_shape = (batch["video"].shape[1], self.frames_per_chunk, *batch["video"].shape[3:])
        audio_shape = (batch["audio"].shape[1], self.audio_per_chunk)
        return lambda index: (draws.normal(*video_shape), draws.normal(*audio_shape))


def rollout_history(
    objective: SelfForcedObjective, batch: dict, embeds: torch.Tensor, num_chunks: int, draws: Draws, real: bool
) -> tuple[list[LatentChunk], KVCache]:
    """The first `num_chunks` chunks and the KV cache they leave, without gradient.

    real=False: generated by the model in few-step mode, chunk by chunk, as at inference
    (the cache holds the model's own output). real=True: the real clip's chunks (teacher forcing).
    """
    config, transformer = objective.config, objective.transformer
    with torch.no_grad():
        if real:
            cache = KVCache(config.sink_chunks, config.cache_chunks)
            chunks = []
            for index in range(num_chunks):
                video = chunk_slice(batch["video"], index, index + 1, objective.frames_per_chunk)
                audio = chunk_slice(batch["audio"], index, index + 1, objective.audio_per_chunk)
                transformer.refresh(cache, video, audio, encoder_hidden_states=embeds)
                chunks.append(LatentChunk(index, video, audio, level=config.few_steps))
            return chunks, cache
        denoiser = objective.denoiser(embeds)
        chunks = list(rollout(denoiser, objective.noise_fn(draws, batch), objective.levels(), 1, True, num_chunks=num_chunks))
        return chunks, denoiser.cache


class MutualForcing(SelfForcedObjective):
    """Stage 3 (see the module docstring)."""

    def losses(self, batch, draws):
        num_chunks = batch["video"].shape[2] // self.frames_per_chunk
        history = draws.shared_int(1, num_chunks)  # chunks of history before the trained chunk
        real_history = draws.shared_bool(self.config.real_history_probability)
        embeds = self.generator.embed(batch["prompts"])
        _, cache = rollout_history(self, batch, embeds.detach(), history, draws, real_history)
        video = chunk_slice(batch["video"], history, history + 1, self.frames_per_chunk)
        audio = chunk_slice(batch["audio"], history, history + 1, self.audio_per_chunk)
        # The weights come from the whole clip: a one-frame chunk has no motion of its own.
        video_weight = chunk_slice(self.video_weight(batch["video"]), history, history + 1, self.frames_per_chunk)
        d = self.distill_steps(draws)[:, None]  # (B, 1)
        t = d + (1 - d) * draws.uniform(1)  # a level from which a jump of d stays >= 0
        noise_video, noise_audio = draws.normal(*video.shape[1:]), draws.normal(*audio.shape[1:])
        noisy = (self.noised(video, noise_video, t, "video"), self.noised(audio, noise_audio, t, "audio"))
        target_embeds = self.target_embeds(batch["prompts"], embeds)
        return self.window_losses(cache, noisy, (video, audio), video_weight, t, d, embeds, target_embeds, draws, attention="causal")


class Rolling(SelfForcedObjective):
    """Stage 4 (see the module docstring)."""

    def loss_ticks(self, num_chunks: int, window: int, opening: bool = False) -> list[int]:
        """Ticks whose window may carry the loss.

        Rolling window (window = few_steps): the ticks at which it is full, every few_steps-th
        one, so their windows share no chunk. Chunk by chunk (window 1): every tick, each one
        chunk at one level. `opening`: the first few_steps ticks of either sampler, those that
        denoise chunk 0 at each of its levels.
        """
        if opening:
            return list(range(self.config.few_steps))
        if window == 1:
            return list(range(num_chunks * self.config.few_steps))
        return list(range(window - 1, num_chunks, window))

    def given_modality(self, draws: Draws) -> str | None:
        """The modality this step holds real and clean: "video" (dubbing), "audio" (driving) or None.

        Each is drawn only when asked for, so that a run without it draws what it drew before;
        driving's draw is conditional on not dubbing, so that `drive_probability` is its share of all steps.
        """
        dub, drive = self.config.dub_probability, self.config.drive_probability
        if dub > 0 and draws.shared_bool(dub):
            return "video"
        if drive > 0 and draws.shared_bool(drive / (1 - dub)):
            return "audio"
        return None

    def losses(self, batch, draws):
        num_chunks = batch["video"].shape[2] // self.frames_per_chunk
        window = 1 if draws.shared_bool(self.config.chunkwise_probability) else self.config.few_steps
        # Drawn only when asked for, so that runs without openings draw the same ticks as before.
        opening = self.config.opening_probability > 0 and draws.shared_bool(self.config.opening_probability)
        given_kind = self.given_modality(draws)
        given = None
        if given_kind:
            per_chunk = self.per_chunk(given_kind)
            given = {given_kind: lambda index: chunk_slice(batch[given_kind], index, index + 1, per_chunk)}
        ticks = self.loss_ticks(num_chunks, window, opening)
        chosen = ticks[draws.shared_int(0, len(ticks))]
        embeds = self.generator.embed(batch["prompts"])
        denoiser = self.denoiser(embeds.detach(), self.config.window_attention)
        video_weight = self.video_weight(batch["video"])
        found = {}

        def before_tick(tick, active, t, t_next):
            if tick != chosen:
                return
            first, last = active[0].index, active[-1].index + 1
            batch_size = active[0].video.shape[0]
            noisy = (torch.cat([c.video for c in active], 2), torch.cat([c.audio for c in active], 2))
            real = (
                chunk_slice(batch["video"], first, last, self.frames_per_chunk),
                chunk_slice(batch["audio"], first, last, self.audio_per_chunk),
            )
            levels = t[None].expand(batch_size, -1)
            jumps = (t - t_next)[None].expand(batch_size, -1)
            with torch.enable_grad():
                found.update(
                    self.window_losses(
                        denoiser.cache, noisy, real, chunk_slice(video_weight, first, last, self.frames_per_chunk),
                        levels, jumps, embeds, self.target_embeds(batch["prompts"], embeds), draws, attention=self.config.window_attention,
                        given=given_kind,
                    )  # fmt: skip
                )

        with torch.no_grad():
            chunks = rollout(
                denoiser, self.noise_fn(draws, batch), self.levels(), window, True,
                num_chunks=num_chunks, given=given, before_tick=before_tick,
            )  # fmt: skip
            for _ in chunks:
                if found:
                    break
        return found


# ---------------------------------------------------------------------- another text encoder


class TextEncoderSwap(Objective):
    """The model with a new text encoder matches its own predictions under the old one (the target).

    Per sample: both modalities noised at independent per-chunk levels with teacher forcing (as in
    stage 2), a step size d (0, the multi-step mode, for half of the samples; else 1/2^j down to
    `distill_min_step`, the few-step modes), the target prompted with the clip's world phrasing,
    this model with a paraphrase of it (`paraphrase_probability`) or the same phrasing.
    """

    def losses(self, batch, draws):
        prompts = batch["prompts"]
        rng = random.Random(draws.shared_int(0, 2**31 - 1))
        paraphrased = draws.uniform() < self.config.paraphrase_probability  # (B,)
        own = [paraphrase_prompt(prompt, rng) if swap else prompt for prompt, swap in zip(prompts, paraphrased)]
        video, audio = batch["video"], batch["audio"]
        num_chunks = video.shape[2] // self.frames_per_chunk
        t_video, t_audio = draws.uniform(num_chunks), draws.uniform(num_chunks)
        jump = jump_sizes(draws, self.config.distill_min_step)
        d = torch.where(draws.uniform() < 0.5, torch.zeros_like(jump), jump)[:, None].expand(-1, num_chunks)  # (B, Nc)
        inputs = dict(
            video=self.noised(video, draws.normal(*video.shape[1:]), t_video, "video"),
            audio=self.noised(audio, draws.normal(*audio.shape[1:]), t_audio, "audio"),
            timestep_video=t_video, timestep_audio=t_audio, step_video=d, step_audio=d,
            context_video=video, context_audio=audio,
        )  # fmt: skip
        with torch.no_grad():
            target = self.target_transformer(**inputs, encoder_hidden_states=self._target[0].embed(prompts))
        output = self.transformer(**inputs, encoder_hidden_states=self.generator.embed(own))
        return {
            "match_video": (1.0, per_sample_mse(output.video, target.video, self.video_weight(video)).mean()),
            "match_audio": (1.0, per_sample_mse(output.audio, target.audio).mean()),
        }


OBJECTIVES = {"pretrain": Pretrain, "couple": Couple, "mutual_forcing": MutualForcing, "rolling": Rolling, "text_encoder": TextEncoderSwap}
