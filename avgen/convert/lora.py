"""LoRA adapters over a Wan generator, merged into its weights before conversion.

LongLive (NVlabs/LongLive, Apache-2.0) releases its generator as a base checkpoint
(`models/longlive_base.pt`, read through its `generator` container) plus a LoRA file
(`models/lora.pt`) trained on top of it with PEFT. As its code does it (2025-26):
  - utils/lora_utils.py `configure_lora_for_model`: `peft.LoraConfig(r=rank,
    lora_alpha=alpha or rank, lora_dropout, target_modules=...)` over `generator.model` (the
    `CausalWanModel`), targeting every `nn.Linear` inside each `CausalWanAttentionBlock`:
    self_attn.{q,k,v,o}, cross_attn.{q,k,v,o}, ffn.0, ffn.2. No bias, rsLoRA or DoRA.
  - trainer/distillation.py `save`: `torch.save({"generator_lora": sd, "critic_lora": sd,
    "step": n})` with `sd = get_peft_model_state_dict(...)`, keyed like
    `base_model.model.blocks.0.self_attn.q.lora_A.weight` (r, in) and `...lora_B.weight` (out, r).
    inference.py also accepts such a state dict bare.
  - Rank and alpha are not in the file: configs/longlive_inference.yaml sets
    `adapter: {rank: 256, alpha: 256}`.
PEFT applies it as W' = W + (alpha / r) B A, which is what `merge_lora` writes.
Files that store alpha per module (`<module>.alpha`, as ComfyUI-style LoRAs do) are read too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from avgen.convert.checkpoint import GENERATOR_PREFIXES, describe_keys, open_weights, strip_wrappers

# PEFT puts `base_model.model.` in front of the adapted model's own names.
LORA_PREFIXES = ("base_model.model.", *GENERATOR_PREFIXES)
# `<module>.lora_A.weight` / `.lora_B.weight` (PEFT; `.default` when saved with the adapter
# name), or `<module>.alpha`.
LORA_KEY = re.compile(r"^(?P<module>.+)\.(?:lora_(?P<part>[AB])(?:\.default)?\.weight|alpha)$")


def load_lora(path: str | Path) -> dict[str, torch.Tensor]:
    """A LoRA file's generator adapters, keyed by official Wan module names.

    Reads `generator_lora` from a LongLive training checkpoint, else the file as a bare
    LoRA state dict; strips PEFT's and the training wrappers' prefixes. Tensors stay
    memory-mapped. Returns e.g. {"blocks.0.self_attn.q.lora_A.weight": (r, in) tensor, ...}.
    Raises ValueError (one line, naming the file) if it holds anything but LoRA weights.
    """
    path = Path(path)
    checkpoint = open_weights(path)
    state = strip_wrappers(checkpoint.get("generator_lora", checkpoint), LORA_PREFIXES)
    if not state:
        raise ValueError(f"{path}: holds no LoRA weights, only {describe_keys(checkpoint)}; pass a LoRA file")
    _adapters(state, source=str(path))
    return state


def _adapters(lora_state: Mapping[str, torch.Tensor], source: str = "LoRA") -> dict[str, dict[str, torch.Tensor]]:
    """{module: {"A": (r, in), "B": (out, r)[, "alpha": scalar]}} from flat LoRA keys."""
    adapters: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in lora_state.items():
        match = LORA_KEY.match(key)
        if match is None:
            raise ValueError(f"{source}: key {key!r} is not a LoRA weight (<module>.lora_A/lora_B.weight or <module>.alpha)")
        adapters.setdefault(match["module"], {})[match["part"] or "alpha"] = value
    for module, parts in adapters.items():
        for part in ("A", "B"):
            if part not in parts:
                raise ValueError(f"{source}: {module} has no lora_{part} weight; the LoRA file is incomplete")
    return adapters


def _scale(module: str, parts: Mapping[str, torch.Tensor], rank: int | None, alpha: float | None) -> float:
    """alpha / r for one adapter, checking the file's rank and alpha against those given."""
    r = parts["A"].shape[0]
    if rank is not None and r != rank:
        raise ValueError(f"the LoRA has rank {r} (lora_A of {module} has {r} rows) but rank {rank} was given; pass --lora-rank {r}")
    if "alpha" in parts:
        stored = float(parts["alpha"])
        if alpha is not None and alpha != stored:
            raise ValueError(f"the LoRA file stores alpha {stored:g} for {module} but alpha {alpha:g} was given; drop --lora-alpha")
        alpha = stored
    if alpha is None:
        raise ValueError("the LoRA file stores no alpha; pass --lora-alpha (LongLive's lora.pt: --lora-alpha 256)")
    return alpha / r


def merge_lora(
    state: Mapping[str, torch.Tensor],
    lora_state: Mapping[str, torch.Tensor],
    rank: int | None = None,
    alpha: float | None = None,
) -> dict[str, torch.Tensor]:
    """Official-named Wan weights with a LoRA merged in: W' = W + (alpha / r) B A.

    Args:
        state: {"blocks.0.self_attn.q.weight": (out, in), ...} as `load_generator` returns.
        lora_state: as `load_lora` returns.
        rank: the rank the LoRA was trained with; checked against the file's lora_A shapes.
        alpha: LoRA alpha, required unless the file stores it (then it must agree).

    Returns a new dict: each adapted weight is a new tensor in its own dtype (the product is
    summed in fp32); every other entry is the same tensor object as in `state`.
    Raises ValueError (one line) on a rank mismatch, an adapter for a weight the generator
    lacks, or shapes that do not fit.
    """
    merged = dict(state)
    for module, parts in _adapters(lora_state).items():
        name = f"{module}.weight"
        if name not in state:
            raise ValueError(f"the LoRA adapts {name}, which the generator does not have; use the LoRA trained on this checkpoint")
        weight, down, up = state[name], parts["A"], parts["B"]  # (out, in), (r, in), (out, r)
        fits = weight.ndim == down.ndim == up.ndim == 2 and up.shape[1] == down.shape[0]
        if not fits or (up.shape[0], down.shape[1]) != tuple(weight.shape):
            raise ValueError(
                f"the LoRA for {name} has lora_A {tuple(down.shape)} and lora_B {tuple(up.shape)}, which do not fit "
                f"its {tuple(weight.shape)}; use the LoRA trained on this checkpoint"
            )
        scale = _scale(module, parts, rank, alpha)
        merged[name] = (weight.float() + scale * (up.float() @ down.float())).to(weight.dtype)
    return merged
