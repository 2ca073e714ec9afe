"""One process or a torchrun job: process group, device, batch split, gradient sync and reductions.

Under `torchrun --nproc_per_node N` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) the
process group uses NCCL on CUDA and gloo on CPU. "ddp" replicates the weights and averages
gradients; "fsdp" shards them with FSDP2 (`fully_shard`), for models too large to replicate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from avgen.training.config import ConfigError, TrainingConfig


@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    sharded: bool = False  # FSDP2: each process holds a shard of every weight

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def local_slice(self, global_batch: int) -> slice:
        """This process's share of a global batch: a contiguous block of equal size."""
        size = global_batch // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Means over processes of scalar metrics."""
        if not values:
            return {}
        stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()]).to(self.device)
        if self.distributed:
            dist.all_reduce(stacked)
            stacked /= self.world_size
        return dict(zip(values, stacked.tolist()))

    def wrap(self, objective: nn.Module, parallel: str, unused_parameters: bool) -> nn.Module:
        """DDP or FSDP2 around the objective; `unused_parameters` when some weights get no gradient (stage 1's fusion)."""
        if not self.distributed:
            return objective
        if parallel == "fsdp":
            from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

            transformer = objective.generator.transformer
            fully_shard(objective.generator.text_encoder)
            fully_shard(transformer)
            for method in ("forward_chunks", "refresh"):
                register_fsdp_forward_method(transformer, method)
            self.sharded = True
            return objective
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(objective, device_ids=device_ids, find_unused_parameters=unused_parameters)


    # Whole state dicts for checkpoints: collectives under FSDP, so every process calls them.

    def full_state(self, module: nn.Module) -> dict:
        if not self.sharded:
            return module.state_dict()
        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def full_optimizer_state(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        if not self.sharded:
            return optimizer.state_dict()
        return get_optimizer_state_dict(module, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_optimizer_state(self, module: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
        if not self.sharded:
            optimizer.load_state_dict(state)
            return
        set_optimizer_state_dict(module, optimizer, state, options=StateDictOptions(full_state_dict=True))


def start(config: TrainingConfig) -> Processes:
    """Join the torchrun job if there is one; otherwise one process on config.device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if config.device not in ("cpu", "cuda"):
        raise ConfigError(f"config key 'device' must be 'cpu' or 'cuda', got {config.device!r}")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device' is 'cuda' but no CUDA device is visible; set device=cpu")
    if world_size > 1 and config.parallel == "fsdp" and config.ema_decay > 0:
        raise ConfigError("config key 'ema_decay' must be 0 with parallel=fsdp (the EMA is kept unsharded); use parallel=ddp")
    if config.batch_size % world_size:
        raise ConfigError(f"config key 'batch_size' ({config.batch_size}) must be divisible by the {world_size} processes")
    if world_size == 1:
        return Processes(device=torch.device(config.device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if config.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), world_size, device)


def stop(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()
