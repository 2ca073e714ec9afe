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

Each forward's velocities move the chunks by the scheduler's rule: avgen's deterministic
shortcut jump, or the official Self-Forcing family's x0 + fresh noise (`renoise`). The
modalities are whatever the model has: a chunk's audio is None for a video-only model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from avgen.models.kv_cache import KVCache, Reach
from avgen.models.transformer import CausalAVTransformer
from avgen.scheduler import FlowMatchShortcutScheduler

# window_attention -> (joint, joint_fusion) of CausalAVTransformer.forward_chunks
WINDOW_ATTENTION = {"joint": (True, True), "fusion-causal": (True, False), "causal": (False, False)}


def window_arguments(name: str) -> dict[str, bool]:
    """The `joint` / `joint_fusion` arguments of forward_chunks for a `window_attention` name."""
    joint, joint_fusion = WINDOW_ATTENTION[name]
    return {"joint": joint, "joint_fusion": joint_fusion}


@dataclass
class LatentChunk:
    """One chunk's latents: video (B, C, f, h, w) and audio (B, C, a); None for a modality the model lacks."""

    index: int
    video: torch.Tensor | None
    audio: torch.Tensor | None
    level: int = 0  # steps taken (0: pure noise, L: final)

    @property
    def batch(self) -> int:
        return (self.video if self.video is not None else self.audio).shape[0]


def _window(chunks: list[LatentChunk], kind: str) -> torch.Tensor | None:
    """The window's latents of one modality, chunks joined along time; None when absent."""
    parts = [getattr(chunk, kind) for chunk in chunks]
    return None if parts[0] is None else torch.cat(parts, dim=2)


def _largest_positions(change: torch.Tensor, area: float) -> torch.Tensor:
    """(B, 1, F, h, w) mask of the round(area * h * w) positions (at least one) of each frame
    where `change` (B, C, F, h, w) is largest over its channels."""
    size = change.abs().amax(1, keepdim=True).flatten(-2)  # (B, 1, F, h * w)
    count = max(1, round(area * size.shape[-1]))
    threshold = size.topk(count, dim=-1).values[..., -1:]  # (B, 1, F, 1)
    return (size >= threshold).view_as(change[:, :1])


def voice_push(heard: torch.Tensor, alone: torch.Tensor, area: float) -> torch.Tensor:
    """What hearing the voice changes in the picture's velocity, the part voice guidance pushes.

    heard, alone: (B, C, F, h, w) video velocities with the audio fused in and without it.
    Only the spatial detail of the change, at the `area` share of each frame's positions where
    it is largest (the mouth); its mean over a frame, a shift of the whole picture's colour, is
    not pushed (see Denoiser).
    """
    change = heard - alone
    change = change - change.mean(dim=(-2, -1), keepdim=True)
    return change * _largest_positions(change, area) if area < 1.0 else change


@dataclass
class Denoiser:
    """The transformer with its cache and prompt: a velocity per chunk, optionally guided.

    guidance_scale > 1 runs an unconditional branch (the negative or empty prompt) and mixes
    v = v_uncond + scale * (v_cond - v_uncond), as classifier-free guidance does, for the
    chunks at a noise level of at least guidance_from_level (1: pure noise); the others keep
    v_cond. Guidance in a limited interval (Kynkäänniemi et al., 2024): where the picture takes
    its shape it helps, where its detail settles it piles off-distribution detail into the
    cache (avgen-tiny, 4 steps: guided at every level, a mint background turns grey within
    seconds; guided at the pure-noise level only, it stays mint and the face keeps its shape).
    The level, not the step, bounds it, so one setting guides the same noise at any step count:
    avgen-tiny's 0.8 guides its 4-step sampler's first step (1 to 0.75) and its 50-step mode's
    first eleven (1 to 0.78); at 1 the 50-step mode took one step (to 0.98) and drifted off the
    prompt's colours on some clips (ΔDrift 1.45 against 1.00 at 0.8, validation seeds 50-59).
    guidance_area_below_level > 0 still guides the picture's chunks below that level, but only
    at that share of each frame's latent positions where the guidance is largest (an outline's
    corners, the eyes) and not where it is small and everywhere (a background's colour, which
    is what piles up): avgen-tiny at 0.125 reads soft square and diamond faces right more often
    than guided at the pure-noise level only, with no background lapse. The voice stays
    unguided there: it has no positions to choose between.
    The branches are the batch rows (cond; uncond) of one forward and one cache: avgen-tiny's
    CPU stream runs guided at 4.5x real time this way, at 3.4x with a second forward (4.4x
    unguided): small matrices leave most of a forward's time to per-operation overhead.

    audio_guidance_scale != 1 guides the picture by the voice: one more forward of the video
    tower alone (no fusion, so the picture does not hear the audio; the same cache and prompt)
    and v_video += (scale - 1) * (v_video - v_alone), what hearing the voice changes (the
    mouth), pushed further. Only the spatial detail of that change is pushed: its mean over
    each frame's height and width, a shift of the whole picture's colour, is not, because
    piled up chunk after chunk through the cache it drifts the picture over minutes (avgen-tiny
    at 1.5, 2 min: ΔDrift 2.4 with the mean pushed, 0.75 without, 0.81 unguided). With
    audio_guidance_area < 1 it is pushed only at that share of each frame's latent positions
    where it is largest, the mouth: what hearing the voice changes elsewhere is left as heard,
    not pushed (avgen-tiny, 0.125 of its 8 x 8 positions, validation seeds: two more square faces
    of 100 read square, drift falls). Skipped while the picture is given (dubbing).

    recache: on a prompt change, rewrite the keys/values of the cached chunks after the sink
    under the new prompt, in one pass where they see each other and the sink (LongLive's KV
    recache); the sink keeps the old prompt's. Their clean latents are kept for it (at most
    `cache_window` chunks). Without it the history stays as it was written.

    window_attention: how the chunks of a denoising window see each other: "joint", every
    chunk every other (Rolling Forcing's relaxed causality); "fusion-causal", each tower its
    own modality jointly, while the fusion between them reads causally, so that a chunk's
    picture hears the voice up to its own chunk and not the noisier voice after it (and its
    voice sees the mouth so); or "causal", each chunk the ones before it.
    """

    transformer: CausalAVTransformer
    prompt_embeds: torch.Tensor  # (B, Lt, text_dim)
    negative_prompt_embeds: torch.Tensor | None = None
    guidance_scale: float = 1.0
    guidance_from_level: float = 0.0
    guidance_area_below_level: float = 0.0
    audio_guidance_scale: float = 1.0
    audio_guidance_area: float = 1.0
    sink: int = 1
    cache_window: int = 4
    reach: Reach = Reach()
    refresh_reach: Reach | None = None
    sink_positions: str = "rerotated"
    recache: bool = False
    window_attention: str = "joint"
    cache: KVCache = field(init=False)  # batch rows (cond; uncond) when guided
    _recent: deque = field(init=False)  # the latest final chunks' (video, audio), for recache

    def __post_init__(self):
        if self.window_attention not in WINDOW_ATTENTION:
            raise ValueError(f"window_attention must be one of {', '.join(WINDOW_ATTENTION)}, got {self.window_attention!r}")
        if not 0.0 <= self.guidance_area_below_level <= 1.0:
            raise ValueError(f"guidance_area_below_level is a share of each frame's positions, in [0, 1]; got {self.guidance_area_below_level}")
        if not 0.0 < self.audio_guidance_area <= 1.0:
            raise ValueError(f"audio_guidance_area is a share of each frame's positions, in (0, 1]; got {self.audio_guidance_area}")
        if self.guided and self.negative_prompt_embeds is None:
            raise ValueError("guidance_scale > 1 needs negative_prompt_embeds")
        self.cache = KVCache(self.sink, self.cache_window, self.reach, self.refresh_reach, self.sink_positions)
        self._recent = deque(maxlen=self.cache_window)

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0

    @property
    def conditional_cache(self) -> KVCache:
        """The conditional branch's rows of the cache (a read-only view when guided)."""
        return self.cache.rows(self.prompt_embeds.shape[0]) if self.guided else self.cache

    def _branches(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """x for every branch: (B, ...) -> (2B, ...) when guided."""
        return x if x is None or not self.guided else torch.cat([x, x])

    def _text(self) -> torch.Tensor:  # (B or 2B, Lt, text_dim)
        return torch.cat([self.prompt_embeds, self.negative_prompt_embeds]) if self.guided else self.prompt_embeds

    def set_prompt(self, prompt_embeds: torch.Tensor) -> None:
        """A new prompt from the next forward on; the history stays (or is recached, see the class)."""
        self.prompt_embeds = prompt_embeds
        cache = self.cache
        cache.clear_text()
        count = min(len(self._recent), cache.num_chunks - cache.sink)
        if self.recache and count > 0:
            recent = list(self._recent)[-count:]
            cache.rewind(count)
            video, audio = (self._branches(_window([LatentChunk(0, v, a) for v, a in recent], kind)) for kind in ("video", "audio"))
            self.transformer.forward_chunks(cache, video, audio, 0.0, 0.0, encoder_hidden_states=self._text(), write=True, joint=True)

    def velocity(self, video, audio, timestep, step, given: tuple[str, ...] = ()) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities of a window of chunks (None for an absent modality).

        Args:
            timestep, step: (video, audio) pairs of (B, Nc) per-chunk levels and step sizes.
            given: the modalities held clean (not denoised): their velocities are not guided.
        """
        both = self._branches
        output = self.transformer.forward_chunks(
            self.cache, both(video), both(audio), *map(both, timestep), *map(both, step), encoder_hidden_states=self._text(),
            **window_arguments(self.window_attention),
        )  # fmt: skip
        video_velocity, audio_velocity = output.video, output.audio
        batch = self.prompt_embeds.shape[0]
        if self.guided:

            def guided(v, levels, area):  # v: (2B, C, F, ...) rows (cond; uncond); levels: (B, Nc) of the window's chunks
                if v is None:
                    return None
                c, u = v.split(batch)
                mixed = u + self.guidance_scale * (c - u)
                if self.guidance_from_level <= 0.0:
                    return mixed
                below = c
                if area > 0.0:
                    push = c - u
                    below = c + (self.guidance_scale - 1.0) * push * _largest_positions(push, area)
                within = (levels >= self.guidance_from_level).repeat_interleave(c.shape[2] // levels.shape[1], dim=1)  # (B, F)
                return torch.where(within.view(batch, 1, within.shape[1], *[1] * (c.dim() - 3)), mixed, below)

            video_velocity = guided(output.video, timestep[0], self.guidance_area_below_level)
            audio_velocity = guided(output.audio, timestep[1], 0.0)  # a waveform's latents have no positions to choose between
        if self.audio_guidance_scale != 1.0 and audio is not None and video is not None and "video" not in given:
            alone = self.transformer.forward_chunks(
                self.conditional_cache, video, None, timestep[0], None, step[0], None, encoder_hidden_states=self.prompt_embeds,
                **window_arguments(self.window_attention),
            ).video  # (B, C, F, h, w)
            push = voice_push(output.video[:batch], alone, self.audio_guidance_area)  # the conditional rows
            video_velocity = video_velocity + (self.audio_guidance_scale - 1.0) * push
        return video_velocity, audio_velocity

    def refresh(self, video: torch.Tensor | None, audio: torch.Tensor | None) -> None:
        """Write a final chunk's clean keys/values into the cache, for every branch."""
        self.transformer.refresh(self.cache, self._branches(video), self._branches(audio), encoder_hidden_states=self._text())
        if self.recache:
            self._recent.append((video, audio))


def rollout(
    denoiser: Denoiser,
    noise: Callable[[int], tuple[torch.Tensor | None, torch.Tensor | None]],
    levels: torch.Tensor,
    window: int,
    few_step: bool,
    num_chunks: int | None = None,
    first: LatentChunk | None = None,
    given: dict[str, Callable[[int], torch.Tensor]] | None = None,
    renoise: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    sigmas: torch.Tensor | None = None,
    on_tick: Callable[[int, list[LatentChunk], torch.Tensor], None] | None = None,
    before_tick: Callable[[int, list[LatentChunk], torch.Tensor, torch.Tensor], None] | None = None,
) -> Iterator[LatentChunk]:
    """Yield final latent chunks in order, `num_chunks` of them or forever when None.

    Args:
        noise: chunk index -> fresh noise (video, audio) for that chunk (None for an absent modality).
        levels: (L + 1,) noise levels from 1 down to 0.
        window: chunks denoised jointly; must divide L.
        few_step: pass step sizes d = t - t_next (few-step mode) instead of d = 0 (multi-step mode).
        first: an already clean chunk 0 (a reference image); it is refreshed and yielded first.
        given: {modality: chunk index -> its clean latents} for a modality held clean at t = 0 that
            drives the other: given audio makes its video, a given video its audio (dubbing).
        renoise: (modality, window latents) -> fresh noise shaped like them. Given, each chunk
            moves by x0 + re-noise: oldest first, every chunk not yet at its last level draws
            noise the size of the whole window and takes its own frames, in the order and
            layout the official Rolling Forcing and Self-Forcing samplers draw theirs. None:
            avgen's deterministic shortcut jump.
        sigmas: (L + 1,) noise scale of each level for the update, when it differs from the level the
            network is told (an unwarped official timestep list); default: the levels.
        on_tick: called after every forward with (tick, window chunks, their new levels).
        before_tick: called before every forward with (tick, window chunks, levels t, levels t_next);
            training computes its rolling-window loss here, on the window the forward is about to see.
    """
    steps = len(levels) - 1
    if window < 1 or steps % window:
        raise ValueError(f"the window ({window} chunks) must divide the number of steps ({steps})")
    stagger = steps // window
    sigmas = levels if sigmas is None else sigmas
    given = given or {}
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
            latents = dict(zip(("video", "audio"), noise(next_index)))
            latents.update({kind: clean(next_index) for kind, clean in given.items()})
            active.append(LatentChunk(next_index, latents["video"], latents["audio"]))
            next_index += 1
        if not active:
            return
        batch = active[0].batch
        t = torch.stack([levels[chunk.level] for chunk in active])  # (Nc,)
        t_next = torch.stack([levels[chunk.level + 1] for chunk in active])
        if before_tick is not None:
            before_tick(tick, active, t, t_next)
        timestep = t[None].expand(batch, -1)
        step = (t - t_next)[None].expand(batch, -1) if few_step else torch.zeros_like(timestep)
        clean = torch.zeros_like(timestep)
        windows = {kind: _window(active, kind) for kind in ("video", "audio")}
        velocities = dict(
            zip(
                ("video", "audio"),
                denoiser.velocity(
                    windows["video"],
                    windows["audio"],
                    tuple(clean if kind in given else timestep for kind in ("video", "audio")),
                    tuple(clean if kind in given else step for kind in ("video", "audio")),
                    given=tuple(given),
                ),
            )
        )
        moving = [kind for kind, latents in windows.items() if latents is not None and kind not in given]
        for i, chunk in enumerate(active):
            for kind in moving:
                latents = getattr(chunk, kind)
                span = slice(i * latents.shape[2], (i + 1) * latents.shape[2])
                velocity = velocities[kind][:, :, span]
                sigma, sigma_next = sigmas[chunk.level], sigmas[chunk.level + 1]
                if renoise is None:
                    moved = FlowMatchShortcutScheduler.step(latents, velocity, sigma, sigma_next)
                else:
                    moved = FlowMatchShortcutScheduler.predict_clean(latents, velocity, sigma)
                    if chunk.level + 1 < steps:
                        fresh = renoise(kind, windows[kind])[:, :, span]
                        moved = FlowMatchShortcutScheduler.add_noise(moved, fresh, sigma_next)
                setattr(chunk, kind, moved)
            chunk.level += 1
        if on_tick is not None:
            on_tick(tick, active, t_next)
        tick += 1
        while active and active[0].level == steps:
            final = active.pop(0)
            denoiser.refresh(final.video, final.audio)
            yield final
