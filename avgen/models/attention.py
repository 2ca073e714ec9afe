"""The one attention dispatch point: PyTorch SDPA, FlexAttention, FlashAttention and xformers.

Every attention in avgen calls `attend`. Inputs are (B, L, Nh, Dh), the layout of the
projections (and of flash-attn / xformers), and the mask is a `Visibility`: which key
tokens each query token may see, described by chunk indices so that each backend can
build its own form (a dense boolean matrix for SDPA and xformers, a block mask for
FlexAttention). FlashAttention and xformers are imported only when chosen and only run on
CUDA tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import torch
import torch.nn.functional as F

BACKENDS = ("sdpa", "flex", "flash", "xformers")


@dataclass(frozen=True)
class Visibility:
    """Which keys each query sees, chunk by chunk (block-causal attention).

    Queries come in chunks of `query_tokens` tokens, keys in chunks of `key_tokens`; chunk i
    of the queries has time index `query_chunk[i]` and group `query_group[i]`, likewise for
    keys ((Nc,) long tensors). A key chunk is visible to a query chunk when it is
        an earlier chunk of the context group, or
        the same chunk in the same group.
    With every chunk in the context group this is plain block-causal attention. Teacher
    forcing ([clean context | noisy chunks]) puts the noisy chunks in another group: a noisy
    chunk then sees the clean chunks before it and itself, never another noisy chunk, and
    the clean chunks never see a noisy one. Giving several chunks the same index lets them
    see each other (a rolling window denoised jointly).
    """

    query_chunk: torch.Tensor
    query_group: torch.Tensor
    query_tokens: int
    key_chunk: torch.Tensor
    key_group: torch.Tensor
    key_tokens: int
    context_group: int = 0

    # Computed once per object: a forward shares one Visibility among its layers, and layouts
    # that repeat (every chunk of a stream) share one among their forwards.
    @cached_property
    def _chunk_mask(self) -> torch.Tensor:
        return _visible(
            self.query_chunk[:, None], self.key_chunk[None, :], self.query_group[:, None], self.key_group[None, :],
            self.context_group,
        )  # fmt: skip

    @cached_property
    def _dense(self) -> torch.Tensor:
        return self._chunk_mask.repeat_interleave(self.query_tokens, 0).repeat_interleave(self.key_tokens, 1)

    @cached_property
    def _full(self) -> bool:
        return bool(self._chunk_mask.all())

    def chunk_mask(self) -> torch.Tensor:
        """(Nq_chunks, Nk_chunks) bool, True where a query chunk sees a key chunk."""
        return self._chunk_mask

    def dense(self) -> torch.Tensor:
        """(Lq, Lk) bool token mask."""
        return self._dense

    def is_full(self) -> bool:
        """True when every query sees every key, so no mask is needed."""
        return self._full


def _visible(q_chunk, k_chunk, q_group, k_group, context_group: int):
    earlier_context = (k_chunk < q_chunk) & (k_group == context_group)
    same_chunk_same_group = (k_chunk == q_chunk) & (k_group == q_group)
    return earlier_context | same_chunk_same_group


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    visibility: Visibility | None = None,
    backend: str = "sdpa",
) -> torch.Tensor:
    """Scaled dot-product attention, (B, Lq, Nh, Dh) x (B, Lk, Nh, Dh) -> (B, Lq, Nh, Dh).

    Args:
        visibility: which keys each query may see; None (or a full one) means all.
        backend: one of BACKENDS.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if visibility is not None and visibility.is_full():
        visibility = None
    if backend == "sdpa":
        return _sdpa(query, key, value, visibility)
    if backend == "flex":
        return _flex(query, key, value, visibility)
    if backend == "flash":
        return _flash(query, key, value, visibility)
    return _xformers(query, key, value, visibility)


def _sdpa(query, key, value, visibility):
    mask = None if visibility is None else visibility.dense().to(query.device)
    out = F.scaled_dot_product_attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


def _flex(query, key, value, visibility):
    from torch.nn.attention.flex_attention import create_block_mask

    block_mask = None
    if visibility is not None:
        allowed = visibility.chunk_mask().to(query.device)
        q_tokens, k_tokens = visibility.query_tokens, visibility.key_tokens

        def mask_mod(b, h, q_index, k_index):
            return allowed[q_index // q_tokens, k_index // k_tokens]

        block_mask = create_block_mask(
            mask_mod, None, None, query.shape[1], key.shape[1], device=query.device.type, BLOCK_SIZE=_flex_block(query, key)
        )
    out = _flex_kernel(query.device.type)(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), block_mask=block_mask)
    return out.transpose(1, 2)


def _flex_block(query, key) -> int:
    """FlexAttention's tile size; short CPU test sequences get a tile that fits them."""
    return 128 if query.is_cuda else max(16, min(128, 1 << (max(query.shape[1], key.shape[1]) - 1).bit_length()))


@cache
def _flex_kernel(device_type: str):
    """flex_attention, compiled on CUDA (its fused kernel) and eager elsewhere; compiled on first use only."""
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    if device_type == "cuda":
        return torch.compile(flex_attention, dynamic=False)

    def eager(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
            return flex_attention(*args, **kwargs)

    return eager


def _require_cuda(name: str, query: torch.Tensor):
    if not query.is_cuda:
        raise ValueError(f"attention backend {name!r} runs only on CUDA tensors; use backend='sdpa' on {query.device.type}")


def _flash(query, key, value, visibility):
    _require_cuda("flash", query)
    if visibility is not None:
        raise ValueError(
            "attention backend 'flash' cannot apply a block mask; use backend='sdpa' or 'flex' for masked (training) forwards"
        )
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        raise ValueError("attention backend 'flash' needs flash-attn: pip install 'avgen[gpu]'") from None
    return flash_attn_func(query, key, value)


def _xformers(query, key, value, visibility):
    _require_cuda("xformers", query)
    try:
        from xformers.ops import memory_efficient_attention
    except ImportError:
        raise ValueError("attention backend 'xformers' needs xformers: pip install 'avgen[gpu]'") from None
    bias = None
    if visibility is not None:
        allowed = visibility.dense().to(query.device)
        # xformers wants a bias whose last dimension is padded to a multiple of 8.
        Lq, Lk = allowed.shape
        padded = torch.full((Lq, (Lk + 7) // 8 * 8), float("-inf"), dtype=query.dtype, device=query.device)
        padded[:, :Lk] = torch.where(allowed, 0.0, float("-inf")).to(query.dtype)
        bias = padded[:, :Lk].expand(query.shape[0], query.shape[2], Lq, Lk)
    return memory_efficient_attention(query, key, value, attn_bias=bias)
