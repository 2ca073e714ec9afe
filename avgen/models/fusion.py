"""Bidirectional cross-modal fusion between the two towers, one per block.

After each block's text cross-attention, video tokens attend to audio tokens and audio
tokens to video tokens (both computed from the states before fusion, so the order does
not matter). Keys and queries are rotated by time only, so a video frame finds the
audio of the same moment; attention is block-causal across modalities. Each direction's
output projection starts at zero: a model with fresh fusion layers behaves exactly like
its two uni-modal towers, which is what makes uni-modal pretraining then coupling work.
"""

from __future__ import annotations

import torch
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from avgen.models.tower import AttendFn, Attention


class CrossModalAttention(nn.Module):
    """Queries from one tower's tokens, keys and values from the other's."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, eps: float):
        super().__init__()
        self.norm_query = FP32LayerNorm(query_dim, eps, elementwise_affine=True)
        self.norm_context = FP32LayerNorm(context_dim, eps, elementwise_affine=True)
        self.attn = Attention(query_dim, heads, eps, context_dim=context_dim)
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Lk, context_dim) -> keys and values, (B, Lk, Nh, Dh) each, before rotation."""
        return self.attn.key_value(self.norm_context(context.float()).type_as(context))

    # Split around `attend` as TowerBlock is, for `avgen.models.compilation`.
    STAGES = ("key_value", "query", "output")

    def forward(self, x: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attend: AttendFn) -> torch.Tensor:
        return self.output(x, attend(self.query(x), key, value))

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Lq, query_dim) -> queries (B, Lq, Nh, Dh), before rotation."""
        return self.attn.query(self.norm_query(x.float()).type_as(x))

    def output(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        return x + self.attn.output(attended, like=x)


class FusionBlock(nn.Module):
    def __init__(self, video_dim: int, audio_dim: int, video_heads: int, audio_heads: int, eps: float):
        super().__init__()
        self.video_from_audio = CrossModalAttention(video_dim, audio_dim, video_heads, eps)
        self.audio_from_video = CrossModalAttention(audio_dim, video_dim, audio_heads, eps)
