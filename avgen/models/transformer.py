"""CausalAVTransformer: a video tower and an audio tower coupled by per-block fusion.

Inputs per modality: latents, a noise level t per chunk and a step size d per chunk
(d = 0: multi-step mode, the instantaneous flow-matching velocity; d > 0: few-step mode,
the average velocity over a jump from t to t - d), plus text embeddings.

Two entry points share one implementation (`_run`):
  * `forward`: a whole clip in one pass with block-causal attention, optionally in the
    teacher-forcing layout [clean context | noisy chunks] (training);
  * `forward_chunks`: one chunk, or a rolling window of chunks, against a `KVCache`
    (inference); `write=True` stores the chunks' keys/values (the clean refresh).

A chunk is `chunk_frames` latent frames of video and the `chunk_frames *
audio_latents_per_frame` audio latents of the same time span. Rotary time positions of
both modalities are in latent frames (audio latent j at j / audio_latents_per_frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from avgen.models.attention import BACKENDS, Visibility, attend
from avgen.models.compilation import compile_stages
from avgen.models.fusion import FusionBlock
from avgen.models.kv_cache import CacheView, KVCache
from avgen.models.rope import check_positions, rotate, rotation, time_angles, time_shift_angles, video_angles
from avgen.models.tower import Tower

CONTEXT, NOISY = 0, 1  # attention groups of teacher forcing (see Visibility)
MODALITIES = ("video", "audio")


@dataclass
class AVTransformerOutput(BaseOutput):
    """Predicted velocities: video (B, C, F, H, W) and audio (B, C, T); None for an absent modality."""

    video: torch.Tensor | None = None
    audio: torch.Tensor | None = None


class StepEmbedding(nn.Module):
    """Embeds the step size d like a timestep; starts at zero so d changes nothing until trained."""

    def __init__(self, freq_dim: int, dim: int):
        super().__init__()
        self.proj = Timesteps(num_channels=freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.embedder = TimestepEmbedding(in_channels=freq_dim, time_embed_dim=dim)
        nn.init.zeros_(self.embedder.linear_2.weight)
        nn.init.zeros_(self.embedder.linear_2.bias)

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        B, Nc = step.shape
        sinusoid = self.proj(step.flatten()).unflatten(0, (B, Nc))  # (B, Nc, freq_dim)
        return self.embedder(sinusoid.to(self.embedder.linear_1.weight.dtype))  # (B, Nc, D)


@dataclass
class _Sequence:
    """One modality's tokens in a forward: the current chunks and the cached ones before them."""

    kind: str
    tokens: torch.Tensor  # (B, L, D)
    grid: tuple[int, ...]  # token grid of the current chunks: (F', H', W') or (T',)
    temb: torch.Tensor  # (B, Nc, D)
    timestep_proj: torch.Tensor  # (B, Nc, 6, D)
    chunk_times: tuple[int, ...]  # rotary position of each current chunk, in chunks (absolute in a stream)
    chunk_visible: torch.Tensor  # (Nc,) visibility index of each current chunk
    chunk_group: torch.Tensor  # (Nc,) CONTEXT or NOISY
    chunk_fused: torch.Tensor  # (Nc,) visibility index of each current chunk in fusion (across modalities)
    num_cached: int  # cached chunks read before the current ones
    slots_per_chunk: int  # time slots per chunk: latent frames (video) or audio tokens (audio)
    slot_seconds: float  # length of a slot, in latent frames

    @property
    def num_chunks(self) -> int:
        return len(self.chunk_times)

    @property
    def tokens_per_chunk(self) -> int:
        return self.tokens.shape[1] // self.num_chunks

    def slot_times(self, chunk_time: int) -> torch.Tensor:
        """(slots_per_chunk,) time of each slot (latent frame or audio token) of a chunk, in latent frames."""
        offsets = torch.arange(self.slots_per_chunk, device=self.tokens.device)
        return (chunk_time * self.slots_per_chunk + offsets) * self.slot_seconds

    def chunk_visibility(self, with_cache: bool, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(chunks,) visibility index and group of each chunk, cached ones first when asked; `fused`:
        the indices the fusion between the modalities reads by."""
        visible = self.chunk_fused if fused else self.chunk_visible
        if not with_cache or self.num_cached == 0:
            return visible, self.chunk_group
        cached = torch.arange(self.num_cached, device=visible.device)
        return torch.cat([cached, visible]), torch.cat([torch.full_like(cached, CONTEXT), self.chunk_group])


class CausalAVTransformer(ModelMixin, ConfigMixin):
    """Causal audio-video diffusion transformer (see the module docstring).

    The video tower's parameters carry diffusers' `WanTransformer3DModel` names, so a Wan
    state dict loads into `transformer.video` with strict key matching.
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = True
    _keep_in_fp32_modules = ["time_embedder", "scale_shift_table", "norm1", "norm2", "norm3", "norm_out"]

    @register_to_config
    def __init__(
        self,
        video_in_channels: int = 16,
        video_patch_size: tuple[int, int, int] = (1, 2, 2),
        video_dim: int = 1536,
        video_num_heads: int = 12,
        video_ffn_dim: int = 8960,
        audio_in_channels: int = 16,
        audio_patch_size: int = 1,
        audio_dim: int = 768,
        audio_num_heads: int = 6,
        audio_ffn_dim: int = 3072,
        num_layers: int = 30,
        fusion: bool = True,
        text_dim: int = 4096,
        freq_dim: int = 256,
        eps: float = 1e-6,
        cross_attn_norm: bool = True,
        chunk_frames: int = 3,
        audio_latents_per_frame: int = 8,
        rope_theta: float = 10000.0,
        rope_max_seq_len: int = 1024,
        timestep_scale: float = 1000.0,
        audio_conditioning: bool = False,
        video_conditioning: bool = False,
        modalities: tuple[str, ...] = ("video", "audio"),
        step_conditioning: bool = True,
    ):
        """`audio_conditioning` / `video_conditioning` record that training taught video generation
        from clean audio / audio generation from clean video (coupling with modality
        conditioning); pipelines refuse a given audio / video otherwise.
        `modalities` names the towers the model has: a converted Self-Forcing-family checkpoint
        is ("video",). `step_conditioning` False drops the step-size input (models that were
        never told the step size, e.g. every converted checkpoint)."""
        super().__init__()
        modalities = tuple(modalities)
        if not modalities or set(modalities) - set(MODALITIES) or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names from {MODALITIES}, got {modalities}")
        if (chunk_frames * audio_latents_per_frame) % audio_patch_size:
            raise ValueError(
                f"audio_patch_size ({audio_patch_size}) must divide chunk_frames * audio_latents_per_frame "
                f"({chunk_frames * audio_latents_per_frame})"
            )
        if chunk_frames % video_patch_size[0]:
            raise ValueError(f"video_patch_size[0] ({video_patch_size[0]}) must divide chunk_frames ({chunk_frames})")
        shared = dict(num_layers=num_layers, text_dim=text_dim, freq_dim=freq_dim, eps=eps, cross_attn_norm=cross_attn_norm)
        has_video, has_audio = "video" in modalities, "audio" in modalities
        self.video = (
            Tower("video", video_in_channels, video_patch_size, video_dim, video_num_heads, video_ffn_dim, **shared)
            if has_video
            else None
        )
        self.audio = (
            Tower("audio", audio_in_channels, (audio_patch_size,), audio_dim, audio_num_heads, audio_ffn_dim, **shared)
            if has_audio
            else None
        )
        self.video_step_embedder = StepEmbedding(freq_dim, video_dim) if has_video and step_conditioning else None
        self.audio_step_embedder = StepEmbedding(freq_dim, audio_dim) if has_audio and step_conditioning else None
        self.fusion_blocks = (
            nn.ModuleList(FusionBlock(video_dim, audio_dim, video_num_heads, audio_num_heads, eps) for _ in range(num_layers))
            if fusion and has_video and has_audio
            else None
        )
        self.attention_backend = "sdpa"
        self._layout_memo: dict[tuple, object] = {}  # rotary tables and masks by layout (see _LayoutTables)
        self.gradient_checkpointing = False  # set by enable_gradient_checkpointing(): recompute each layer in backward

    # ------------------------------------------------------------------ public API

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this model generates, in ("video", "audio") order."""
        return tuple(kind for kind in MODALITIES if kind in self.config.modalities)

    @property
    def towers(self) -> dict[str, Tower]:
        return {kind: getattr(self, kind) for kind in self.modalities}

    @property
    def step_embedders(self) -> dict[str, StepEmbedding | None]:
        return {kind: getattr(self, f"{kind}_step_embedder") for kind in self.modalities}

    @classmethod
    def from_preset(cls, name: str, **overrides) -> CausalAVTransformer:
        """A freshly initialised model of a named size ("tiny", "wan-1.3b"); see avgen.models.presets."""
        from avgen.models.presets import preset_config

        return cls(**{**preset_config(name), **overrides})

    def extended(self, **changes) -> CausalAVTransformer:
        """A model of this config with `changes` that holds every weight of this one.

        For growing a pretrained model, e.g. an audio tower, fusion and step-size inputs onto a
        converted video model: `video.extended(modalities=("video", "audio"), fusion=True,
        step_conditioning=True, audio_dim=96, ...)`. The new parts start as they initialise;
        fusion and step-size inputs at zero output, so the old towers predict exactly as
        before. A change that would drop or reshape a weight of this model is a ValueError.
        """
        config = {key: value for key, value in self.config.items() if not key.startswith("_")}
        model = type(self)(**{**config, **changes}).to(self.device)
        if model.dtype != self.dtype:  # cast only when it changes something: diffusers warns on every dtype cast
            model = model.to(self.dtype)
        new = model.state_dict()
        kept = self.state_dict()
        lost = [name for name, tensor in kept.items() if name not in new or new[name].shape != tensor.shape]
        if lost:
            raise ValueError(f"extending with {sorted(changes)} would drop or reshape {lost[0]} (and {len(lost) - 1} more)")
        model.load_state_dict(kept, strict=False)
        return model

    def set_attention_backend(self, backend: str) -> None:
        """Choose the attention kernel: one of "sdpa" (default), "flex", "flash", "xformers"."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown attention backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.attention_backend = backend

    def compile(self, **options) -> None:
        """Compile the per-token stages of every layer with torch.compile, in place.

        The KV cache and attention stay eager; see avgen.models.compilation. `options` go to
        torch.compile (static shapes by default; `mode="reduce-overhead"` for CUDA graphs).
        Where compilation is unavailable, the first forward warns once and runs eager.
        """
        compile_stages(self, **options)

    def forward(
        self,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        timestep_video: torch.Tensor | None = None,
        timestep_audio: torch.Tensor | None = None,
        step_video: torch.Tensor | None = None,
        step_audio: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        context_video: torch.Tensor | None = None,
        context_audio: torch.Tensor | None = None,
        causal: bool = True,
        return_dict: bool = True,
    ) -> AVTransformerOutput | tuple:
        """Whole clip in one pass (training).

        Args:
            video: (B, C, F, H, W) noisy latents, F a multiple of chunk_frames; or None.
            audio: (B, C, T) noisy latents, T = F * audio_latents_per_frame when both are given; or None.
            timestep_*: noise level in [0, 1] per chunk, (B, Nc) or (B,).
            step_*: step size d in [0, 1] per chunk, (B, Nc) or (B,); default 0 (multi-step mode).
            encoder_hidden_states: (B, Lt, text_dim) text embeddings.
            context_*: clean latents of the same shape for teacher forcing: the sequence becomes
                [clean context | noisy chunks] and noisy chunk i sees clean chunks < i and itself.
            causal: False gives full bidirectional attention over the clip (a Wan-style forward).

        Returns:
            predictions for the noisy latents, same shapes as `video` / `audio`.
        """
        num_chunks = self._check_inputs(video, audio, encoder_hidden_states)
        teacher_forcing = context_video is not None or context_audio is not None
        if teacher_forcing:
            self._check_context(video, context_video, "video")
            self._check_context(audio, context_audio, "audio")
        device = (video if video is not None else audio).device
        chunks = torch.arange(num_chunks, device=device)
        visible = chunks if causal else torch.zeros_like(chunks)
        times = tuple(range(num_chunks))
        if teacher_forcing:  # [clean context | noisy chunks], both at the same time positions
            layout = (
                times + times,
                torch.cat([visible, visible]),
                torch.cat([torch.full_like(chunks, CONTEXT), torch.full_like(chunks, NOISY)]),
                torch.cat([visible, visible]),
            )
        else:
            layout = (times, visible, torch.full_like(chunks, CONTEXT), visible)
        inputs = self._per_modality(num_chunks, video, audio, timestep_video, timestep_audio, step_video, step_audio)
        if teacher_forcing:
            contexts = {"video": context_video, "audio": context_audio}
            for kind, (latents, timestep, step) in inputs.items():
                zeros = torch.zeros_like(timestep)
                inputs[kind] = (
                    torch.cat([contexts[kind], latents], dim=2),
                    torch.cat([zeros, timestep], dim=1),
                    torch.cat([zeros, step], dim=1),
                )
        outputs = self._run(inputs, layout, encoder_hidden_states, cache=None, view=None, write=False, last_chunk=num_chunks - 1)
        if teacher_forcing:
            outputs = {kind: out[:, :, out.shape[2] // 2 :] for kind, out in outputs.items()}
        result = AVTransformerOutput(video=outputs.get("video"), audio=outputs.get("audio"))
        return result if return_dict else (result.video, result.audio)

    def forward_chunks(
        self,
        kv_cache: KVCache,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        timestep_video: torch.Tensor | None = None,
        timestep_audio: torch.Tensor | None = None,
        step_video: torch.Tensor | None = None,
        step_audio: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        write: bool = False,
        joint: bool = False,
        joint_fusion: bool | None = None,
    ) -> AVTransformerOutput:
        """One chunk or a window of chunks after the ones in `kv_cache` (inference).

        The chunks attend to the cached chunks and, block-causally, to each other
        (`joint=True`: to every chunk of the window, Rolling Forcing's relaxed causality).
        `joint_fusion` says the same of the fusion between audio and video (None: as `joint`):
        `joint=True, joint_fusion=False` reads each modality jointly, the other causally.
        With `write=True` their keys/values are stored in the cache as the next chunks:
        call it once per final chunk, with its clean latents at t = 0 (the refresh).
        Text keys/values are computed once per prompt and kept in the cache; call
        `kv_cache.clear_text()` when the prompt changes.
        """
        num_chunks = self._check_inputs(video, audio, encoder_hidden_states)
        device = (video if video is not None else audio).device
        view = kv_cache.view(num_chunks, refresh=write, max_time=self.config.rope_max_seq_len // self.config.chunk_frames)
        chunks = torch.arange(num_chunks, device=device)
        cached = len(view.slots)
        joint_fusion = joint if joint_fusion is None else joint_fusion
        window = torch.full_like(chunks, cached + num_chunks - 1)
        visible, fused = (window if joint else chunks + cached), (window if joint_fusion else chunks + cached)
        # Queries at their absolute times, like the stored keys (see avgen.models.kv_cache).
        layout = (tuple(range(view.query_absolute, view.query_absolute + num_chunks)), visible, torch.full_like(chunks, CONTEXT), fused)
        inputs = self._per_modality(num_chunks, video, audio, timestep_video, timestep_audio, step_video, step_audio)
        # Everything the masks and the cached keys' shifts depend on: a stream repeats these every chunk.
        signature = (view.shifts, num_chunks, joint, joint_fusion, device, *((k, v[0].shape[2:]) for k, v in inputs.items()))
        outputs = self._run(
            inputs, layout, encoder_hidden_states, cache=kv_cache, view=view, write=write,
            last_chunk=view.query_time + num_chunks - 1, signature=signature,
        )  # fmt: skip
        if write:
            kv_cache.commit(num_chunks)
        return AVTransformerOutput(video=outputs.get("video"), audio=outputs.get("audio"))

    def refresh(
        self,
        kv_cache: KVCache,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        context_noise: float = 0.0,
    ) -> None:
        """Write the keys/values of final, clean chunks into the cache (run at t = context_noise).

        The noisy keys/values of the denoising passes are never kept: only this call writes.
        """
        self.forward_chunks(
            kv_cache, video, audio, context_noise, context_noise, encoder_hidden_states=encoder_hidden_states, write=True
        )

    # ------------------------------------------------------------------ the one implementation

    def _run(
        self,
        inputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        layout: tuple[tuple[int, ...], torch.Tensor, torch.Tensor, torch.Tensor],
        encoder_hidden_states: torch.Tensor | None,
        cache: KVCache | None,
        view: CacheView | None,
        write: bool,
        last_chunk: int,
        signature: tuple | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the towers (and fusion) over the given chunks; see forward / forward_chunks.

        `last_chunk`: the rotary position (in chunks) of the latest chunk computed.
        `signature`: a hashable summary of the layout; forwards with the same one reuse each
        other's rotary tables and masks (None: computed for this forward alone).
        """
        cfg = self.config
        towers = self.towers
        num_cached = len(view.slots) if view is not None else 0

        sequences: dict[str, _Sequence] = {}
        for kind, (latents, timestep, step) in inputs.items():
            tower = towers[kind]
            tokens = tower.embed(latents)
            step_embedder = self.step_embedders[kind]
            offset = step_embedder(step * cfg.timestep_scale) if step_embedder is not None else None
            temb, projection = tower.time_embedding(timestep * cfg.timestep_scale, offset)
            if kind == "video":
                grid = tuple(n // p for n, p in zip(latents.shape[2:], tower.patch_size))
                slots, slot_seconds = cfg.chunk_frames // tower.patch_size[0], float(tower.patch_size[0])
            else:
                grid = (latents.shape[2] // tower.patch_size[0],)
                slots = cfg.chunk_frames * cfg.audio_latents_per_frame // tower.patch_size[0]
                slot_seconds = tower.patch_size[0] / cfg.audio_latents_per_frame
            sequences[kind] = _Sequence(kind, tokens, grid, temb, projection, *layout, num_cached, slots, slot_seconds)
            check_positions(((last_chunk + 1) * slots - 1) * slot_seconds, cfg.rope_max_seq_len)

        tables = _LayoutTables(sequences, cfg.rope_theta, cfg.chunk_frames, self._layout_memo, signature, view)
        backend = self.attention_backend
        text = {kind: self._text_kv(towers[kind], kind, encoder_hidden_states, cache) for kind in sequences}

        def self_attend(layer: int, kind: str):
            sequence = sequences[kind]
            head_dim = towers[kind].blocks[layer].attn1.head_dim

            def attend_fn(query, key, value):
                rotation = tables.self_angles(kind, head_dim)
                return _attend_with_cache(
                    cache, view, write, layer, kind, query, key, value, rotation, rotation,
                    tables.shifts(kind, head_dim, video_band=kind == "video"), tables.visibility(kind, kind),
                    sequence.num_chunks, backend,
                )  # fmt: skip

            return attend_fn

        def text_attend(query, key, value):
            return attend(query, key, value, None, backend)

        def run_layer(layer: int, *tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
            modulations = {}
            for (kind, sequence), kind_tokens in zip(sequences.items(), tokens):
                block = towers[kind].blocks[layer]
                modulations[kind] = block.modulation(sequence.timestep_proj)
                sequence.tokens = block.self_attention(kind_tokens, modulations[kind], self_attend(layer, kind))
                sequence.tokens = block.text_attention(sequence.tokens, text[kind][layer], text_attend)
            if self.fusion_blocks is not None and len(sequences) == 2:
                self._fuse(layer, sequences, tables, cache, view, write, backend)
            for kind, sequence in sequences.items():
                sequence.tokens = towers[kind].blocks[layer].feed_forward(sequence.tokens, modulations[kind])
            return tuple(sequence.tokens for sequence in sequences.values())

        # Checkpointing only where nothing is written to the cache: a recomputed layer must not write twice.
        checkpointed = self.gradient_checkpointing and torch.is_grad_enabled() and not write
        for layer in range(cfg.num_layers):
            tokens = tuple(sequence.tokens for sequence in sequences.values())
            if checkpointed:
                tokens = torch.utils.checkpoint.checkpoint(run_layer, layer, *tokens, use_reentrant=False)
            else:
                tokens = run_layer(layer, *tokens)
            for sequence, kind_tokens in zip(sequences.values(), tokens):
                sequence.tokens = kind_tokens

        outputs = {}
        for kind, sequence in sequences.items():
            tower = towers[kind]
            outputs[kind] = tower.unembed(tower.head(sequence.tokens, sequence.temb), sequence.grid)
        return outputs

    def _fuse(self, layer, sequences, tables, cache, view, write, backend) -> None:
        fusion = self.fusion_blocks[layer]
        video, audio = sequences["video"], sequences["audio"]
        updates = {}
        for query_seq, context_seq, module, stream in (
            (video, audio, fusion.video_from_audio, "video_from_audio"),
            (audio, video, fusion.audio_from_video, "audio_from_video"),
        ):
            head_dim = module.attn.head_dim
            key, value = module.key_value(context_seq.tokens)

            def attend_fn(q, k, v, query_seq=query_seq, context_seq=context_seq, head_dim=head_dim, stream=stream):
                return _attend_with_cache(
                    cache, view, write, layer, stream, q, k, v,
                    tables.time_angles(query_seq.kind, head_dim), tables.time_angles(context_seq.kind, head_dim),
                    tables.shifts(context_seq.kind, head_dim, video_band=False),
                    tables.visibility(query_seq.kind, context_seq.kind), query_seq.num_chunks, backend,
                )  # fmt: skip

            updates[query_seq.kind] = module(query_seq.tokens, key, value, attend_fn)
        video.tokens, audio.tokens = updates["video"], updates["audio"]

    def _text_kv(self, tower: Tower, kind: str, encoder_hidden_states, cache: KVCache | None):
        """Per-layer text keys/values of a tower, from the cache when the prompt is unchanged."""
        if cache is not None and cache.text(0, kind) is not None:
            return [cache.text(layer, kind) for layer in range(len(tower.blocks))]
        if encoder_hidden_states is None:
            raise ValueError(f"encoder_hidden_states (B, Lt, {self.config.text_dim}) is required: no prompt is cached")
        text = tower.text_embedding(encoder_hidden_states)
        pairs = [block.attn2.key_value(text) for block in tower.blocks]
        if cache is not None:
            for layer, (key, value) in enumerate(pairs):
                cache.set_text(layer, kind, key, value)
        return pairs

    # ------------------------------------------------------------------ input checks

    def _check_inputs(self, video, audio, encoder_hidden_states) -> int:
        """Validate shapes against the config; return the number of chunks."""
        cfg = self.config
        if video is None and audio is None:
            raise ValueError("give video latents, audio latents or both")
        for kind, latents in (("video", video), ("audio", audio)):
            if latents is not None and kind not in self.modalities:
                raise ValueError(f"this model has no {kind} tower (modalities {self.modalities}); pass {kind}=None")
        counts = []
        if video is not None:
            if video.ndim != 5 or video.shape[1] != cfg.video_in_channels:
                raise ValueError(
                    f"video latents must be (B, {cfg.video_in_channels}, F, H, W), got {tuple(video.shape)}"
                )
            F_, H, W = video.shape[2:]
            _, ph, pw = cfg.video_patch_size
            if F_ == 0 or F_ % cfg.chunk_frames:
                raise ValueError(f"video latent frames must be a positive multiple of chunk_frames={cfg.chunk_frames}, got {F_}")
            if H % ph or W % pw:
                raise ValueError(f"video latent height and width must be multiples of the patch ({ph}, {pw}), got ({H}, {W})")
            counts.append(F_ // cfg.chunk_frames)
        if audio is not None:
            per_chunk = cfg.chunk_frames * cfg.audio_latents_per_frame
            if audio.ndim != 3 or audio.shape[1] != cfg.audio_in_channels:
                raise ValueError(f"audio latents must be (B, {cfg.audio_in_channels}, T), got {tuple(audio.shape)}")
            if audio.shape[2] == 0 or audio.shape[2] % per_chunk:
                raise ValueError(
                    f"audio latents must be a positive multiple of {per_chunk} per chunk "
                    f"(chunk_frames * audio_latents_per_frame), got T={audio.shape[2]}"
                )
            counts.append(audio.shape[2] // per_chunk)
        if len(set(counts)) > 1:
            raise ValueError(f"video and audio must cover the same chunks, got {counts[0]} and {counts[1]}")
        if video is not None and audio is not None and video.shape[0] != audio.shape[0]:
            raise ValueError(f"video and audio batch sizes differ: {video.shape[0]} and {audio.shape[0]}")
        if encoder_hidden_states is not None and (encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[-1] != cfg.text_dim):
            raise ValueError(f"encoder_hidden_states must be (B, Lt, {cfg.text_dim}), got {tuple(encoder_hidden_states.shape)}")
        return counts[0]

    @staticmethod
    def _check_context(latents, context, kind: str) -> None:
        if (latents is None) != (context is None) or (context is not None and context.shape != latents.shape):
            shape = None if latents is None else tuple(latents.shape)
            raise ValueError(f"context_{kind} must match {kind}'s shape {shape} for teacher forcing")

    def _per_modality(self, num_chunks, video, audio, timestep_video, timestep_audio, step_video, step_audio) -> dict:
        """{kind: (latents, (B, Nc) timesteps, (B, Nc) step sizes)} for the modalities given."""
        inputs = {}
        for kind, latents, timestep, step in (
            ("video", video, timestep_video, step_video),
            ("audio", audio, timestep_audio, step_audio),
        ):
            if latents is not None:
                inputs[kind] = (
                    latents,
                    self._per_chunk(timestep, latents, num_chunks, f"timestep_{kind}"),
                    self._per_chunk(step, latents, num_chunks, f"step_{kind}", default=0.0),
                )
        return inputs

    @staticmethod
    def _per_chunk(value, latents: torch.Tensor, num_chunks: int, name: str, default: float | None = None) -> torch.Tensor:
        """(B,) or (B, Nc) (or a number) -> (B, Nc) float32 on the latents' device."""
        B = latents.shape[0]
        if value is None:
            if default is None:
                raise ValueError(f"{name} is required: a noise level in [0, 1] per chunk, (B, {num_chunks}) or (B,)")
            value = default
        value = torch.as_tensor(value, dtype=torch.float32, device=latents.device)
        if value.ndim == 0:
            value = value.expand(B)
        if value.ndim == 1:
            value = value[:, None].expand(B, num_chunks)
        if value.shape != (B, num_chunks):
            raise ValueError(f"{name} must be (B,) or (B, Nc) = ({B}, {num_chunks}), got {tuple(value.shape)}")
        return value


class _LayoutTables:
    """Rotary (cos, sin), cached keys' shifts and attention visibility of a forward, shared by every layer.

    Rotary tables are built per chunk and time and kept in `memo` (the transformer's), so a
    chunk computed in several passes (a rolling window holds it for a pass per level, then
    its refresh) pays for its table once. With a `signature`, the shifts and masks of the
    layout are kept there too, for the next forward of the same layout (every chunk of a
    stream once its window is full). The memo is emptied when it outgrows `MEMO_SIZE` entries.
    """

    MEMO_SIZE = 512

    def __init__(self, sequences: dict[str, _Sequence], theta: float, chunk_frames: int, memo: dict, signature: tuple | None, view: CacheView | None):
        self.sequences = sequences
        self.theta = theta
        self.chunk_frames = chunk_frames
        self._memo = memo
        self._signature = signature
        self._view = view
        self._local: dict[tuple, object] = {}
        if len(self._memo) > self.MEMO_SIZE:
            self._memo.clear()

    def _kept(self, key: tuple, build, shared: bool):
        store = self._memo if shared else self._local
        if key not in store:
            store[key] = build()
        return store[key]

    def _chunk_rotation(self, sequence: _Sequence, head_dim: int, time: int, video_split: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin), (1, tokens_per_chunk, 1, Dh / 2), of one chunk at `time` (in chunks)."""

        def build():
            slots = sequence.slot_times(time)  # (slots_per_chunk,)
            if video_split:
                _, height, width = sequence.grid
                return rotation(video_angles(slots, height, width, head_dim, self.theta))
            tokens = slots.repeat_interleave(sequence.tokens_per_chunk // sequence.slots_per_chunk)
            return rotation(time_angles(tokens, head_dim, self.theta))

        grid = sequence.grid[1:] if sequence.kind == "video" else ()
        key = ("chunk", sequence.kind, video_split, head_dim, grid, sequence.tokens_per_chunk, sequence.tokens.device, time)
        return self._kept(key, build, shared=True)

    def _rotation(self, kind: str, head_dim: int, video_split: bool) -> tuple[torch.Tensor, torch.Tensor]:
        def build():
            sequence = self.sequences[kind]
            parts = [self._chunk_rotation(sequence, head_dim, time, video_split) for time in sequence.chunk_times]
            if len(parts) == 1:
                return parts[0]
            return torch.cat([cos for cos, _ in parts], dim=1), torch.cat([sin for _, sin in parts], dim=1)

        return self._kept(("rotation", kind, head_dim, video_split), build, shared=False)

    def self_angles(self, kind: str, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotation of a tower's own attention for the current chunks: Wan's 3-D split for video, time for audio."""
        return self._rotation(kind, head_dim, video_split=kind == "video")

    def time_angles(self, kind: str, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotation by time alone (cross-modal fusion) for the current chunks."""
        return self._rotation(kind, head_dim, video_split=False)

    def shifts(self, kind: str, head_dim: int, video_band: bool) -> list[tuple[int, int, tuple[torch.Tensor, torch.Tensor]]]:
        """[(first, last + 1, (cos, sin))] runs of cached chunks of `kind` that the view moves, with the
        rotation that moves them (see CacheView.shifts); empty when every chunk keeps its distance."""
        if self._view is None:
            return []
        device = self.sequences[kind].tokens.device

        def build():
            runs, shifts = [], self._view.shifts
            start = 0
            while start < len(shifts):
                end = start + 1
                while end < len(shifts) and shifts[end] == shifts[start]:
                    end += 1
                if shifts[start]:
                    angles = time_shift_angles(shifts[start] * self.chunk_frames, head_dim, self.theta, video_band, device)
                    runs.append((start, end, rotation(angles[None])))
                start = end
            return runs

        return self._kept((self._signature, "shifts", kind, head_dim, video_band), build, shared=self._signature is not None)

    def visibility(self, query_kind: str, key_kind: str) -> Visibility:
        """Which of [cached | current] keys of `key_kind` each current query of `query_kind` sees."""

        def build():
            query_seq, key_seq = self.sequences[query_kind], self.sequences[key_kind]
            fused = query_kind != key_kind
            query_chunk, query_group = query_seq.chunk_visibility(with_cache=False, fused=fused)
            key_chunk, key_group = key_seq.chunk_visibility(with_cache=True, fused=fused)
            return Visibility(
                query_chunk, query_group, query_seq.tokens_per_chunk, key_chunk, key_group, key_seq.tokens_per_chunk, CONTEXT
            )

        return self._kept((self._signature, "visibility", query_kind, key_kind), build, shared=self._signature is not None)


def _attend_with_cache(
    cache: KVCache | None,
    view: CacheView | None,
    write: bool,
    layer: int,
    stream: str,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    query_angles: tuple[torch.Tensor, torch.Tensor],
    key_angles: tuple[torch.Tensor, torch.Tensor],
    shifts: list[tuple[int, int, tuple[torch.Tensor, torch.Tensor]]],
    visibility: Visibility,
    num_chunks: int,
    backend: str,
) -> torch.Tensor:
    """Attention of the current queries over [cached keys | current keys].

    Queries and current keys are rotated at their times; cached keys were stored rotated at
    theirs and only the runs the view moves (`shifts`) are turned further. The current keys
    are written (rotated) after use, so the read is never overwritten mid-forward.
    """
    query, key = rotate(query, query_angles), rotate(key, key_angles)
    cached = cache.read(layer, stream, view) if cache is not None else None
    if cached is None:
        keys, values = key, value
    else:
        cached_keys, cached_values = cached
        if shifts:
            tokens = cached_keys.shape[1] // len(view.slots)
            pieces, done = [], 0
            for first, end, turn in shifts:
                pieces += [cached_keys[:, done * tokens : first * tokens], rotate(cached_keys[:, first * tokens : end * tokens], turn)]
                done = end
            cached_keys = torch.cat([*pieces, cached_keys[:, done * tokens :]], 1)
        keys, values = torch.cat([cached_keys, key], 1), torch.cat([cached_values, value], 1)
    out = attend(query, keys, values, visibility, backend)
    if write:
        cache.write(layer, stream, key, value, num_chunks)
    return out
