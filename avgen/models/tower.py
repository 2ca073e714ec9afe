"""One modality's transformer: the Wan architecture, with Wan's parameter names.

A `Tower` is diffusers' `WanTransformer3DModel` taken apart so that a caller can run it
chunk by chunk against a KV cache and interleave cross-modal fusion between its stages:
patch embedding -> per block (modulated self-attention, text cross-attention, modulated
MLP) -> modulated output norm -> projection. The video tower embeds (B, C, F, H, W)
latents with a 3-D patch; the audio tower embeds (B, C, T) latents with a 1-D patch and is
otherwise identical. Modulation (timestep) is given per chunk, (B, Nc, ...), and broadcast
over the chunk's tokens: chunks in one forward may sit at different noise levels.

The tower computes projections; where keys come from (cache, rotary positions, masks) is
decided by the `attend` function its caller passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTimeTextImageEmbedding
from torch import nn

# attend(query, key, value) -> out, all (B, L, Nh, Dh); keys may be longer than queries (cache).
AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift with per-chunk (B, Nc, D) modulation over (B, Nc * T, D) tokens."""
    B, L, D = x.shape
    Nc = shift.shape[1]
    x = x.view(B, Nc, L // Nc, D)  # (B, Nc, T, D)
    return (x * (1 + scale[:, :, None]) + shift[:, :, None]).view(B, L, D)


def gate(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """x * gate with per-chunk (B, Nc, D) gates over (B, Nc * T, D) tokens."""
    B, L, D = x.shape
    Nc = gate.shape[1]
    return (x.view(B, Nc, L // Nc, D) * gate[:, :, None]).view(B, L, D)


class Attention(nn.Module):
    """Wan's attention parameters (to_q, to_k, to_v, to_out, RMS q/k norms across heads)."""

    def __init__(self, dim: int, heads: int, eps: float, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(context_dim or dim, dim)
        self.to_v = nn.Linear(context_dim or dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_q(self.to_q(x)).unflatten(2, (self.heads, -1))  # (B, L, Nh, Dh)

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = self.norm_k(self.to_k(context)).unflatten(2, (self.heads, -1))  # (B, L, Nh, Dh)
        return key, self.to_v(context).unflatten(2, (self.heads, -1))

    def output(self, attended: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.to_out[0](attended.flatten(2).type_as(like))  # (B, L, D)


class TowerBlock(nn.Module):
    """Wan transformer block, split into its three stages."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, eps: float, cross_attn_norm: bool):
        super().__init__()
        self.norm1 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, heads, eps)
        self.attn2 = Attention(dim, heads, eps)
        self.norm2 = FP32LayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
        self.ffn = FeedForward(dim, inner_dim=ffn_dim, activation_fn="gelu-approximate")
        self.norm3 = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def modulation(self, timestep_proj: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Six (B, Nc, D) fp32 modulations from (B, Nc, 6, D) timestep projections."""
        return (self.scale_shift_table[None] + timestep_proj.float()).unbind(2)

    # Each attention is split around its `attend` call: the stages before and after depend on
    # this forward's tokens alone, so `avgen.models.compilation` can compile them with static
    # shapes, while the cache read and the attention itself stay outside the graph.
    STAGES = ("modulation", "self_attention_inputs", "self_attention_output", "text_query", "text_output", "feed_forward")

    def self_attention(self, x: torch.Tensor, modulation: tuple[torch.Tensor, ...], attend: AttendFn) -> torch.Tensor:
        return self.self_attention_output(x, attend(*self.self_attention_inputs(x, modulation)), modulation)

    def self_attention_inputs(
        self, x: torch.Tensor, modulation: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query, key and value (B, L, Nh, Dh) of the modulated tokens, before rotation."""
        shift, scale = modulation[:2]
        h = modulate(self.norm1(x.float()), shift, scale).type_as(x)
        return (self.attn1.query(h), *self.attn1.key_value(h))

    def self_attention_output(self, x: torch.Tensor, attended: torch.Tensor, modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
        out = self.attn1.output(attended, like=x)
        return (x.float() + gate(out, modulation[2])).type_as(x)

    def text_attention(self, x: torch.Tensor, text_kv: tuple[torch.Tensor, torch.Tensor], attend: AttendFn) -> torch.Tensor:
        return self.text_output(x, attend(self.text_query(x), *text_kv))

    def text_query(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn2.query(self.norm2(x.float()).type_as(x))

    def text_output(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        return x + self.attn2.output(attended, like=x)

    def feed_forward(self, x: torch.Tensor, modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
        shift, scale, gate_mlp = modulation[3:]
        h = modulate(self.norm3(x.float()), shift, scale).type_as(x)
        return (x.float() + gate(self.ffn(h).float(), gate_mlp)).type_as(x)


class Tower(nn.Module):
    """Patch embedding, condition embedding, blocks and output head of one modality.

    Args:
        kind: "video" (3-D patches of (B, C, F, H, W)) or "audio" (1-D patches of (B, C, T)).
        patch_size: (pt, ph, pw) for video, (p,) for audio.
    """

    def __init__(
        self,
        kind: str,
        in_channels: int,
        patch_size: tuple[int, ...],
        dim: int,
        heads: int,
        ffn_dim: int,
        num_layers: int,
        text_dim: int,
        freq_dim: int,
        eps: float,
        cross_attn_norm: bool,
    ):
        super().__init__()
        self.kind = kind
        self.patch_size = tuple(patch_size)
        convolution = nn.Conv3d if kind == "video" else nn.Conv1d
        self.patch_embedding = convolution(in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.condition_embedder = WanTimeTextImageEmbedding(dim, freq_dim, dim * 6, text_dim)
        self.blocks = nn.ModuleList(TowerBlock(dim, ffn_dim, heads, eps, cross_attn_norm) for _ in range(num_layers))
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, in_channels * math.prod(self.patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def embed(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) or (B, C, T) latents -> (B, L, D) tokens, video in (f, y, x) order."""
        return self.patch_embedding(latents).flatten(2).transpose(1, 2).contiguous()

    def time_embedding(
        self, timestep: torch.Tensor, offset: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-chunk (B, Nc) timesteps (0..1000) -> temb (B, Nc, D) and projections (B, Nc, 6, D).

        `offset` (B, Nc, D) is added to temb before the projection (the step-size input).
        """
        embedder = self.condition_embedder
        B, Nc = timestep.shape
        sinusoid = embedder.timesteps_proj(timestep.flatten()).unflatten(0, (B, Nc))  # (B, Nc, freq_dim)
        weight = embedder.time_embedder.linear_1.weight
        temb = embedder.time_embedder(sinusoid.to(weight.dtype))  # (B, Nc, D)
        if offset is not None:
            temb = temb + offset
        projection = embedder.time_proj(embedder.act_fn(temb)).unflatten(2, (6, -1))  # (B, Nc, 6, D)
        return temb, projection

    def text_embedding(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, Lt, text_dim) -> (B, Lt, D)."""
        return self.condition_embedder.text_embedder(encoder_hidden_states)

    def head(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """Modulated output norm and projection, (B, L, D) -> (B, L, C * prod(patch))."""
        shift, scale = (self.scale_shift_table[None] + temb.float()[:, :, None]).unbind(2)  # (B, Nc, D) each
        return self.proj_out(modulate(self.norm_out(x.float()), shift, scale).type_as(x))

    def unembed(self, tokens: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """(B, L, C * prod(patch)) -> latents, given the token grid (F', H', W') or (T',)."""
        B = tokens.shape[0]
        if self.kind == "video":
            f, h, w = grid
            pt, ph, pw = self.patch_size
            x = tokens.reshape(B, f, h, w, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
            return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, F, H, W)
        (t,) = grid
        (p,) = self.patch_size
        return tokens.reshape(B, t, p, -1).permute(0, 3, 1, 2).flatten(2, 3)  # (B, C, T)
