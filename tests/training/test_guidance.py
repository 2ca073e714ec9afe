"""Prompt dropout trains the unconditional mode; a guided teacher extrapolates away from it."""

import torch

from avgen.models.kv_cache import KVCache
from avgen.training.objectives import Draws, rollout_history
from avgen.training.trainer import Trainer


def prompts_seen(trainer: Trainer, steps: range) -> list[list[str]]:
    """The prompts each step's losses receive, for the first two clips."""
    seen = []
    trainer.objective.losses = lambda batch, draws: seen.append(batch["prompts"]) or {}
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    for step in steps:
        trainer.objective.forward(batch, Draws(0, step, [0, 1], trainer.processes.device))
    return seen


def test_prompt_dropout_replaces_a_share_of_prompts_by_the_empty_one(small_config):
    trainer = Trainer(small_config("couple", steps=1, prompt_dropout=0.5), progress=False)
    seen = prompts_seen(trainer, range(20))
    dropped = sum(prompt == "" for prompts in seen for prompt in prompts)
    assert 8 <= dropped <= 32, dropped  # of 40, with p = 0.5
    assert prompts_seen(trainer, range(20)) == seen  # the same steps drop the same samples
    kept = {prompt for prompts in seen for prompt in prompts} - {""}
    assert kept == set(trainer.data.batch([0, 1], trainer.processes.device)["prompts"])

    undropped = Trainer(small_config("couple", steps=1), progress=False)
    assert all("" not in prompts for prompts in prompts_seen(undropped, range(20)))


def test_guided_teacher_reads_the_history_under_the_empty_prompt_and_extrapolates(small_config, monkeypatch):
    from avgen.training import objectives

    trainer = Trainer(small_config("rolling", steps=1, teacher_guidance=2.0), progress=False)
    objective, generator = trainer.objective, trainer.generator
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    with torch.no_grad():
        embeds, null = generator.embed(batch["prompts"]), generator.embed(["", ""])

    def history(scale):
        objective.config.teacher_guidance = scale
        return rollout_history(objective, batch, embeds, 2, Draws(0, 0, [0, 1], trainer.processes.device), real=False)

    chunks, denoiser = history(2.0)
    # The history itself is the unguided few-step rollout, as at inference.
    for a, b in zip(chunks, history(1.0)[0]):
        torch.testing.assert_close(a.video, b.video)

    # The empty prompt's cache holds that same history, as the empty prompt sees it.
    fresh = KVCache(trainer.config.sink_chunks, trainer.config.cache_chunks)
    with torch.no_grad():
        for chunk in chunks:
            generator.transformer.refresh(fresh, chunk.video, chunk.audio, encoder_hidden_states=null)
    torch.testing.assert_close(denoiser.caches["uncond"].read(0, "video")[0], fresh.read(0, "video")[0])

    # The self-distillation targets move along the guidance direction in proportion to g - 1.
    compared = []
    mse = objectives.per_sample_mse
    monkeypatch.setattr(objectives, "per_sample_mse", lambda prediction, target, weight=None: compared.append(target) or mse(prediction, target, weight))
    window = (batch["video"][:, :, 2:3], batch["audio"][:, :, 16:24])
    t, d = torch.full((2, 1), 0.75), torch.full((2, 1), 0.25)
    targets = {}
    for scale in (1.0, 2.0, 3.0):
        objective.config.teacher_guidance = scale
        compared.clear()
        target_embeds = objective.target_embeds(batch["prompts"], embeds)
        draws = Draws(0, 0, [0, 1], trainer.processes.device)
        with torch.no_grad():
            objective.window_losses(denoiser.caches, window, window, None, t, d, embeds, target_embeds, draws, joint=False)
        targets[scale] = compared[2:]  # sd_video, sd_audio (after the two flow-matching terms)
    for one, two, three in zip(targets[1.0], targets[2.0], targets[3.0]):
        assert (two - one).abs().max() > 1e-4
        torch.testing.assert_close(three - two, two - one, rtol=1e-4, atol=1e-5)
