"""The rollout: denoise chunks against the KV cache, refresh the cache with each final chunk, move on.

This is the one implementation of causal generation; both pipelines, their `stream()`,
training's self-generated history and the app call it.

`rollout` denoises a rolling window of up to `window` chunks, staggered by
L / window noise levels (L = len(levels) - 1 steps per chunk): every tick, one forward
over the window moves each chunk one level cleaner, jointly (Rolling Forcing); a chunk that
reaches level 0 is final: its clean keys/values are written to the cache and it is
yielded, and a fresh noise chunk enters at level 1. With window = L this is Rolling
Forcing's one-chunk-per-forward steady state, with a warm-up of partial windows at the start
and a flush at the end; with window = 1 it is chunk-wise autoregression with L steps per
chunk (Mutual Forcing's sampler).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from avgen.models.kv_cache import KVCache
from avgen.models.transformer import CausalAVTransformer
from avgen.scheduler import FlowMatchShortcutScheduler


@dataclass
class LatentChunk:
    """One chunk's latents: video (B, C, f, h, w), audio (B, C, a)."""

    index: int
    video: torch.Tensor
    audio: torch.Tensor
    level: int = 0  # steps taken (0: pure noise, L: final)


@dataclass
class Denoiser:
    """The transformer with its caches and prompt: a velocity per chunk, optionally guided.

    guidance_scale > 1 runs an unconditional branch (its own cache, empty prompt) and mixes
    v = v_uncond + scale * (v_cond - v_uncond), as classifier-free guidance does.
    """

    transformer: CausalAVTransformer
    prompt_embeds: torch.Tensor  # (B, Lt, text_dim)
    negative_prompt_embeds: torch.Tensor | None = None
    guidance_scale: float = 1.0
    sink: int = 1
    cache_window: int = 4
    caches: dict[str, KVCache] = field(default_factory=dict)

    def __post_init__(self):
        self.caches["cond"] = KVCache(self.sink, self.cache_window)
        if self.guided:
            if self.negative_prompt_embeds is None:
                raise ValueError("guidance_scale > 1 needs negative_prompt_embeds")
            self.caches["uncond"] = KVCache(self.sink, self.cache_window)

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0

    def _embeds(self, branch: str) -> torch.Tensor:
        return self.prompt_embeds if branch == "cond" else self.negative_prompt_embeds

    def set_prompt(self, prompt_embeds: torch.Tensor) -> None:
        """A new prompt from the next forward on; the history in the caches stays."""
        self.prompt_embeds = prompt_embeds
        self.caches["cond"].clear_text()

    def velocity(self, video, audio, timestep, step) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocities of a window of chunks.

        Args:
            timestep, step: (video, audio) pairs of (B, Nc) per-chunk levels and step sizes.
        """
        outputs = {
            branch: self.transformer.forward_chunks(
                cache, video, audio, *timestep, *step, encoder_hidden_states=self._embeds(branch), joint=True
            )
            for branch, cache in self.caches.items()
        }
        cond = outputs["cond"]
        if not self.guided:
            return cond.video, cond.audio
        uncond, scale = outputs["uncond"], self.guidance_scale
        return uncond.video + scale * (cond.video - uncond.video), uncond.audio + scale * (cond.audio - uncond.audio)

    def refresh(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        """Write a final chunk's clean keys/values into every branch's cache."""
        for branch, cache in self.caches.items():
            self.transformer.refresh(cache, video, audio, encoder_hidden_states=self._embeds(branch))


def rollout(
    denoiser: Denoiser,
    noise: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    levels: torch.Tensor,
    window: int,
    few_step: bool,
    num_chunks: int | None = None,
    first: LatentChunk | None = None,
    given_audio: Callable[[int], torch.Tensor] | None = None,
    on_tick: Callable[[int, list[LatentChunk], torch.Tensor], None] | None = None,
    before_tick: Callable[[int, list[LatentChunk], torch.Tensor, torch.Tensor], None] | None = None,
) -> Iterator[LatentChunk]:
    """Yield final latent chunks in order, `num_chunks` of them or forever when None.

    Args:
        noise: chunk index -> fresh noise (video, audio) for that chunk.
        levels: (L + 1,) noise levels from 1 down to 0.
        window: chunks denoised jointly; must divide L.
        few_step: pass step sizes d = t - t_next (few-step mode) instead of d = 0 (multi-step mode).
        first: an already clean chunk 0 (a reference image); it is refreshed and yielded first.
        given_audio: chunk index -> clean audio latents that drive the video (audio stays at t = 0).
        on_tick: called after every forward with (tick, window chunks, their new levels).
        before_tick: called before every forward with (tick, window chunks, levels t, levels t_next);
            training computes its rolling-window loss here, on the window the forward is about to see.
    """
    steps = len(levels) - 1
    if window < 1 or steps % window:
        raise ValueError(f"the window ({window} chunks) must divide the number of steps ({steps})")
    stagger = steps // window
    next_index = 0
    if first is not None:
        denoiser.refresh(first.video, first.audio)
        yield first
        next_index = 1
    active: list[LatentChunk] = []
    tick = 0
    while True:
        more = num_chunks is None or next_index < num_chunks
        if more and len(active) < window and (not active or active[-1].level >= stagger):
            video, audio = noise(next_index)
            if given_audio is not None:
                audio = given_audio(next_index)
            active.append(LatentChunk(next_index, video, audio))
            next_index += 1
        if not active:
            return
        batch = active[0].video.shape[0]
        t = torch.stack([levels[chunk.level] for chunk in active])  # (Nc,)
        t_next = torch.stack([levels[chunk.level + 1] for chunk in active])
        if before_tick is not None:
            before_tick(tick, active, t, t_next)
        timestep = t[None].expand(batch, -1)
        step = (t - t_next)[None].expand(batch, -1) if few_step else torch.zeros_like(timestep)
        audio_timestep = torch.zeros_like(timestep) if given_audio is not None else timestep
        video_velocity, audio_velocity = denoiser.velocity(
            torch.cat([c.video for c in active], dim=2),
            torch.cat([c.audio for c in active], dim=2),
            (timestep, audio_timestep),
            (step, torch.zeros_like(step) if given_audio is not None else step),
        )
        frames, samples = active[0].video.shape[2], active[0].audio.shape[2]
        for i, chunk in enumerate(active):
            chunk.video = FlowMatchShortcutScheduler.step(chunk.video, video_velocity[:, :, i * frames : (i + 1) * frames], t[i], t_next[i])
            if given_audio is None:
                chunk.audio = FlowMatchShortcutScheduler.step(chunk.audio, audio_velocity[:, :, i * samples : (i + 1) * samples], t[i], t_next[i])
            chunk.level += 1
        if on_tick is not None:
            on_tick(tick, active, t_next)
        tick += 1
        while active and active[0].level == steps:
            final = active.pop(0)
            denoiser.refresh(final.video, final.audio)
            yield final
