"""torch.compile for a model's per-token stages, falling back to eager where it cannot compile.

A streaming forward alternates between two kinds of work: stages that depend only on the
tokens of this forward (norms, modulation, projections, gates, the feed-forward), and the
attention over the KV cache, whose key count, rotary shifts and writes change from chunk to
chunk. Only the first kind is compiled (each module lists its own in `STAGES`); the cache
stays eager Python. Stage shapes repeat every chunk once a window is full, so static shapes
compile one graph per window size, the same code serves every layer (parameters are graph
inputs), and on CUDA `mode="reduce-overhead"` replays them as CUDA graphs.

Compilation happens on first use. If it fails there (no C++ compiler for the CPU backend,
an unsupported platform), the model warns once, in one line, and runs eager from then on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import tree_map_only


@dataclass
class _Compilation:
    """What every stage of one model shares: torch.compile's options and whether it gave up."""

    options: dict
    failed: bool = False

    @property
    def replays_graphs(self) -> bool:
        """CUDA graphs (these modes) write each output into memory that the graph's next replay overwrites."""
        return self.options.get("mode") in ("reduce-overhead", "max-autotune")

    def give_up(self, error: Exception) -> None:
        if not self.failed:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            warnings.warn(f"torch.compile is unavailable here ({reason[:200]}); running eager", stacklevel=3)
        self.failed = True


class _CompiledStage:
    """A bound stage method, compiled; its eager self when the model's compilation gave up."""

    def __init__(self, eager, compilation: _Compilation):
        self.eager = eager
        self.compilation = compilation
        self.compiled = torch.compile(eager, **compilation.options)

    def __call__(self, *args, **kwargs):
        if self.compilation.failed:
            return self.eager(*args, **kwargs)
        try:
            out = self.compiled(*args, **kwargs)
        except _compile_errors() as error:
            self.compilation.give_up(error)
            return self.eager(*args, **kwargs)
        # One graph serves every layer: the next layer's replay would overwrite this layer's outputs
        # while they are still in use, so they are copied out (a small copy next to the stage's work).
        return tree_map_only(torch.Tensor, torch.clone, out) if self.compilation.replays_graphs else out


def _compile_errors() -> tuple[type[Exception], ...]:
    from torch._dynamo.exc import BackendCompilerFailed, InternalTorchDynamoError
    from torch._inductor.exc import InductorError

    return BackendCompilerFailed, InternalTorchDynamoError, InductorError


def compile_stages(model: nn.Module, **options) -> int:
    """Compile the `STAGES` of every submodule of `model` in place; returns how many.

    `options` go to `torch.compile` (default `dynamic=False`). Calling it again recompiles
    with the new options; `eager_stages(model)` undoes it.
    """
    eager_stages(model)
    if not torch._dynamo.is_dynamo_supported():
        warnings.warn("torch.compile is not supported on this platform; running eager", stacklevel=2)
        return 0
    compilation = _Compilation({"dynamic": False, **options})
    count = 0
    for module in model.modules():
        for name in getattr(type(module), "STAGES", ()):
            module.__dict__[name] = _CompiledStage(getattr(module, name), compilation)  # shadows the method
            count += 1
    return count


def eager_stages(model: nn.Module) -> None:
    """Undo `compile_stages`: every stage runs its method again."""
    for module in model.modules():
        for name in getattr(type(module), "STAGES", ()):
            module.__dict__.pop(name, None)


def is_compiled(model: nn.Module) -> bool:
    """True when `model`'s stages are compiled and compilation has not given up."""
    stages = [module.__dict__.get(name) for module in model.modules() for name in getattr(type(module), "STAGES", ())]
    return any(isinstance(stage, _CompiledStage) and not stage.compilation.failed for stage in stages)
