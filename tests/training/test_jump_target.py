"""The self-distillation target of a few-step jump: what the target weights reach in smaller moves."""

import pytest
import torch

from avgen.models.kv_cache import KVCache
from avgen.rollout import Denoiser
from avgen.scheduler import FlowMatchShortcutScheduler
from avgen.training.objectives import per_position
from avgen.training.trainer import Trainer


def window_and_jump(small_config, **changes):
    """A rolling-stage objective, a noisy two-chunk window at levels (1, 1/2), its jumps 1/2, an empty cache."""
    trainer = Trainer(small_config("rolling", steps=1, clip_chunks=5, few_steps=2, **changes), progress=False)
    objective = trainer.objective
    with torch.no_grad():  # a step-size embedding that starts at zero would hide the step input
        for parameter in trainer.generator.transformer.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(3)))
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    with torch.no_grad():
        embeds = trainer.generator.embed(batch["prompts"])
    t = torch.tensor([[1.0, 0.5]]).expand(2, -1)  # (B, Nc)
    d = torch.full_like(t, 0.5)
    generator = torch.Generator().manual_seed(0)
    noisy = []
    for kind in ("video", "audio"):
        clean = batch[kind][:, :, : 2 * objective.per_chunk(kind)]
        noisy.append(objective.noised(clean, torch.randn(clean.shape, generator=generator), t, kind))
    cache = KVCache(trainer.config.sink_chunks, trainer.config.cache_chunks)
    return objective, cache, tuple(noisy), t, d, embeds


def moved_by_hand(objective, cache, noisy, t, d, embeds, moves: int, step_input: float, sampler=None) -> list[torch.Tensor]:
    """(x_t - x_{t-d}) / d after `moves` scheduler steps of d / moves, each read at `step_input`
    by the objective's unguided velocity, or by a pipeline's `sampler` (a Denoiser) when given."""
    x, level = list(noisy), t
    for _ in range(moves):
        step = torch.full_like(t, step_input)
        with torch.no_grad():
            if sampler is None:
                velocities = objective.velocity(objective.transformer, cache, *x, level, step, embeds, "joint")
            else:
                velocities = sampler.velocity(*x, (level, level), (step, step))
        after = level - d / moves
        x = [
            FlowMatchShortcutScheduler.step(
                x_, v, per_position(level, objective.per_chunk(kind), x_.ndim), per_position(after, objective.per_chunk(kind), x_.ndim)
            )
            for x_, v, kind in zip(x, velocities, ("video", "audio"))
        ]  # fmt: skip
        level = after
    return [(start - end) / per_position(d, objective.per_chunk(kind), start.ndim) for start, end, kind in zip(noisy, x, ("video", "audio"))]


def test_the_ladder_target_is_two_half_jumps_of_the_few_step_mode(small_config):
    objective, cache, noisy, t, d, embeds = window_and_jump(small_config)
    target = objective.jump_target(cache, noisy, t, d, embeds, attention="joint", given=None)
    for got, expected in zip(target, moved_by_hand(objective, cache, noisy, t, d, embeds, moves=2, step_input=0.25)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("teacher_step, moves", [(0.125, 4), (0.2, 3), (1.0, 1)])
def test_the_multi_step_teacher_target_is_euler_steps_of_the_multi_step_mode(small_config, teacher_step, moves):
    """distill_teacher_step s: ceil(d / s) Euler steps of the multi-step mode (step input 0), no longer than s."""
    objective, cache, noisy, t, d, embeds = window_and_jump(small_config, distill_teacher_step=teacher_step)
    target = objective.jump_target(cache, noisy, t, d, embeds, attention="joint", given=None)
    for got, expected in zip(target, moved_by_hand(objective, cache, noisy, t, d, embeds, moves=moves, step_input=0.0)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    ladder = moved_by_hand(objective, cache, noisy, t, d, embeds, moves=2, step_input=0.25)
    assert (target[0] - ladder[0]).abs().max() > 1e-3


def test_voice_guided_distillation_trains_the_jump_the_sampler_takes_against_the_half_jumps_it_would_take(small_config):
    """audio_guidance_scale > 1: target and student are the pipeline's voice-guided velocities, not the bare ones."""
    objective, cache, noisy, t, d, embeds = window_and_jump(small_config, audio_guidance_scale=3.0, audio_guidance_area=0.25)
    sampler = Denoiser(objective.transformer, embeds, audio_guidance_scale=3.0, audio_guidance_area=0.25, window_attention="joint")
    target = objective.jump_target(cache, noisy, t, d, embeds, attention="joint", given=None)
    for got, expected in zip(target, moved_by_hand(objective, cache, noisy, t, d, embeds, moves=2, step_input=0.25, sampler=sampler)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    bare = moved_by_hand(objective, cache, noisy, t, d, embeds, moves=2, step_input=0.25)
    assert (target[0] - bare[0]).abs().max() > 1e-3

    with torch.no_grad():
        student = objective.guided_velocity(objective.transformer, cache, *noisy, t, d, embeds, "joint")
        sampled = sampler.velocity(*noisy, (t, t), (d, d))
    for got, expected in zip(student, sampled):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
