"""Each stage trains: finite losses that go down on a small world set, with the inputs each stage promises."""

import pytest
import torch

from avgen.training.objectives import Draws, rollout_history
from avgen.training.trainer import Trainer


def fixed_loss(trainer: Trainer) -> float:
    """The objective on one fixed batch with fixed noise (step 10_000's draws), without training."""
    indices = trainer.batch_indices(10_000)
    batch = trainer.data.batch(indices, trainer.processes.device)
    draws = Draws(trainer.config.seed, 10_000, list(range(len(indices))), trainer.processes.device)
    with torch.no_grad():
        loss, _ = trainer.objective(batch, draws)
    return float(loss)


@pytest.mark.parametrize(
    "stage, changes",
    [
        ("pretrain", {"steps": 25, "learning_rate": 2e-3}),
        ("couple", {"steps": 25, "learning_rate": 2e-3, "condition_probability": 0.5, "motion_weight": 4.0}),
        ("mutual_forcing", {"steps": 12, "learning_rate": 2e-3, "ema_decay": 0.9, "ema_target": True}),
        ("rolling", {"steps": 12, "learning_rate": 2e-3, "few_steps": 2, "motion_weight": 4.0, "prompt_dropout": 0.25}),
        ("rolling", {"steps": 12, "learning_rate": 2e-3, "few_steps": 2, "distill_teacher_step": 0.25, "window_attention": "causal"}),
        (
            "rolling",
            {"steps": 12, "learning_rate": 2e-3, "few_steps": 2, "audio_guidance_scale": 2.0, "audio_guidance_area": 0.25,
             "window_attention": "fusion-causal"},
        ),  # fmt: skip
    ],
)
def test_stage_loss_is_finite_and_decreases(small_config, stage, changes):
    trainer = Trainer(small_config(stage, **changes), progress=False)
    before = fixed_loss(trainer)
    trainer.run()
    after = fixed_loss(trainer)
    records = [line for line in (trainer.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == changes["steps"]
    assert torch.isfinite(torch.tensor([before, after])).all()
    assert after < 0.9 * before, (before, after)


def test_pretrain_trains_each_tower_alone(small_config):
    """Stage 1 never runs the fusion layers, so they get no gradient and stay at zero."""
    trainer = Trainer(small_config("pretrain", steps=2), progress=False)
    trainer.run()
    fusion = [p for name, p in trainer.generator.named_parameters() if "fusion_blocks" in name and name.endswith("to_out.0.weight")]
    assert fusion and all(p.abs().max() == 0 for p in fusion)


def test_coupling_with_conditioning_records_audio_conditioning(small_config):
    trainer = Trainer(small_config("couple", steps=1, condition_probability=0.2), progress=False)
    assert trainer.generator.transformer.config.audio_conditioning


def test_mutual_forcing_history_is_self_generated(small_config):
    """The history comes from the model's own few-step rollout, and that output is what fills the cache."""
    trainer = Trainer(small_config("mutual_forcing", steps=1), progress=False)
    objective, transformer = trainer.objective, trainer.generator.transformer
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    with torch.no_grad():
        embeds = trainer.generator.embed(batch["prompts"])
    draws = Draws(0, 0, [0, 1], trainer.processes.device)
    history, cache = rollout_history(objective, batch, embeds, 3, draws, real=False)
    generated = torch.cat([chunk.video for chunk in history], 2)
    real = batch["video"][:, :, :3]
    assert generated.shape == real.shape and (generated - real).abs().mean() > 0.1

    def cached_keys(chunks):
        from avgen.models.kv_cache import KVCache

        fresh = KVCache(trainer.config.sink_chunks, trainer.config.cache_chunks)
        with torch.no_grad():
            for video, audio in chunks:
                transformer.refresh(fresh, video, audio, encoder_hidden_states=embeds)
        return fresh.read(0, "video")[0]

    from_history = cached_keys([(c.video, c.audio) for c in history])
    from_real = cached_keys([(batch["video"][:, :, i : i + 1], batch["audio"][:, :, 8 * i : 8 * (i + 1)]) for i in range(3)])
    assert cache.num_cached == 3
    torch.testing.assert_close(cache.read(0, "video")[0], from_history)
    assert (cache.read(0, "video")[0] - from_real).abs().max() > 1e-3


def test_rolling_losses_use_full_windows_that_share_no_chunk(small_config):
    trainer = Trainer(small_config("rolling", steps=1, clip_chunks=9, few_steps=3), progress=False)
    ticks = trainer.objective.loss_ticks(9, window=3)
    windows = [set(range(tick - 2, tick + 1)) for tick in ticks]
    assert ticks == [2, 5, 8]
    assert all(a.isdisjoint(b) for i, a in enumerate(windows) for b in windows[i + 1 :])


def test_rolling_stage_can_roll_out_chunk_by_chunk(small_config, monkeypatch):
    """chunkwise_probability 1: every step rolls out with window 1 and takes its losses on one chunk."""
    from avgen.training import objectives

    windows, loss_windows = [], []
    rollout = objectives.rollout

    def recording_rollout(denoiser, noise, levels, window, few_step, before_tick=None, **kwargs):
        def recording_before_tick(tick, active, t, t_next):
            loss_windows.append(len(active))
            before_tick(tick, active, t, t_next)

        windows.append(window)
        return rollout(denoiser, noise, levels, window, few_step, before_tick=recording_before_tick, **kwargs)

    trainer = Trainer(small_config("rolling", steps=2, clip_chunks=5, chunkwise_probability=1.0), progress=False)
    monkeypatch.setattr(objectives, "rollout", recording_rollout)
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    for step in range(2):
        _, metrics = trainer.objective(batch, Draws(0, step, [0, 1], trainer.processes.device))
        assert set(metrics) == {"fm_video", "fm_audio", "sd_video", "sd_audio"}
        assert all(torch.isfinite(value) for value in metrics.values())
    assert windows == [1, 1] and set(loss_windows) == {1}


def test_rolling_stage_openings_take_the_loss_while_chunk_0_is_denoised(small_config, monkeypatch):
    """opening_probability 1: the loss window holds chunk 0, at one of its levels, whatever the sampler."""
    from avgen.training import objectives

    loss_ticks, calls = [], []
    rollout = objectives.rollout

    def recording_rollout(denoiser, noise, levels, window, few_step, before_tick=None, **kwargs):
        def recording_before_tick(tick, active, t, t_next):
            before = len(calls)
            before_tick(tick, active, t, t_next)
            if len(calls) > before:  # this tick carried the loss
                loss_ticks.append((window, tick, [chunk.index for chunk in active], float(t[0])))

        return rollout(denoiser, noise, levels, window, few_step, before_tick=recording_before_tick, **kwargs)

    monkeypatch.setattr(objectives, "rollout", recording_rollout)
    for chunkwise in (0.0, 1.0):
        trainer = Trainer(small_config("rolling", steps=1, clip_chunks=5, opening_probability=1.0, chunkwise_probability=chunkwise), progress=False)
        window_losses = trainer.objective.window_losses
        monkeypatch.setattr(trainer.objective, "window_losses", lambda *args, **kwargs: calls.append(1) or window_losses(*args, **kwargs))
        batch = trainer.data.batch([0, 1], trainer.processes.device)
        loss_ticks.clear()
        for step in range(8):
            _, metrics = trainer.objective(batch, Draws(0, step, [0, 1], trainer.processes.device))
            assert all(torch.isfinite(value) for value in metrics.values())
        few_steps = trainer.config.few_steps
        assert len(loss_ticks) == 8
        for window, tick, indices, level in loss_ticks:
            assert tick < few_steps and indices[0] == 0
            assert level == pytest.approx(1 - tick / few_steps)  # chunk 0's own level
            assert window == (1 if chunkwise else few_steps)
        # Not only the first full window (tick few_steps - 1), which the rolling sampler takes anyway.
        assert {tick for _, tick, _, _ in loss_ticks} - {few_steps - 1}


def test_gradient_checkpointing_gives_the_same_gradients(small_config):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        trainer = Trainer(small_config("couple", steps=1, gradient_checkpointing=checkpointing), progress=False)
        batch = trainer.data.batch([0, 1], trainer.processes.device)
        loss, _ = trainer.objective(batch, Draws(0, 0, [0, 1], trainer.processes.device))
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.generator.transformer.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "option, held, trained, recorded",
    [("dub_probability", "video", "audio", "video_conditioning"), ("drive_probability", "audio", "video", "audio_conditioning")],
)
def test_rolling_stage_steps_with_a_given_modality_hold_it_real_and_clean_and_train_the_other_alone(
    small_config, monkeypatch, option, held, trained, recorded
):
    """dub_probability 1 (drive_probability 1): the rollout holds the real video (audio) at t = 0,
    the loss window's video (audio) is the real clip's, only the other modality's losses count,
    and the model records that it was trained so."""
    from avgen.training import objectives

    given_to_rollout, windows = [], []
    rollout = objectives.rollout

    def recording_rollout(denoiser, noise, levels, window, few_step, before_tick=None, given=None, **kwargs):
        given_to_rollout.append(given)

        def recording_before_tick(tick, active, t, t_next):
            windows.append((active[0].index, torch.cat([getattr(chunk, held) for chunk in active], 2)))
            before_tick(tick, active, t, t_next)

        return rollout(denoiser, noise, levels, window, few_step, before_tick=recording_before_tick, given=given, **kwargs)

    trainer = Trainer(small_config("rolling", steps=1, clip_chunks=5, few_steps=2, **{option: 1.0}), progress=False)
    assert getattr(trainer.generator.transformer.config, recorded)
    with torch.no_grad():  # fusion, zero at a fresh start, carries one modality to the other
        for parameter in trainer.generator.transformer.fusion_blocks.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
    monkeypatch.setattr(objectives, "rollout", recording_rollout)
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    draws = lambda: Draws(0, 0, [0, 1], trainer.processes.device)  # noqa: E731
    with torch.no_grad():
        loss, metrics = trainer.objective(batch, draws())
    assert list(given_to_rollout[0]) == [held]
    per_chunk = trainer.objective.per_chunk(held)
    for first, latents in windows:
        assert torch.equal(latents, batch[held][:, :, first * per_chunk : first * per_chunk + latents.shape[2]])
    assert set(metrics) == {f"fm_{trained}", f"sd_{trained}"}  # the given modality's terms weigh 0: not logged
    expected = metrics[f"fm_{trained}"] + trainer.config.distill_weight * metrics[f"sd_{trained}"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    # The trained modality's losses read the given one: another clip's changes them.
    swapped = {**batch, held: batch[held].flip(0)}
    with torch.no_grad():
        _, other = trainer.objective(swapped, draws())
    assert float(other[f"fm_{trained}"]) != float(metrics[f"fm_{trained}"])


def test_flow_weight_0_trains_the_few_step_jumps_alone(small_config):
    trainer = Trainer(small_config("rolling", steps=1, clip_chunks=5, few_steps=2, flow_weight=0.0, distill_weight=2.0), progress=False)
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    with torch.no_grad():
        loss, metrics = trainer.objective(batch, Draws(0, 0, [0, 1], trainer.processes.device))
    assert set(metrics) == {"sd_video", "sd_audio"}  # flow matching weighs 0: not logged
    assert float(loss) == pytest.approx(2.0 * float(metrics["sd_video"] + metrics["sd_audio"]), rel=1e-5)


def test_keep_weight_holds_the_multi_step_mode_where_the_target_weights_have_it(small_config):
    """keep: the online multi-step velocity against the target's (the EMA's), 0 while they are equal."""
    config = small_config("rolling", steps=1, clip_chunks=5, few_steps=2, keep_weight=1.0, ema_decay=0.9, ema_target=True)
    trainer = Trainer(config, progress=False)
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    with torch.no_grad():
        _, fresh = trainer.objective(batch, Draws(0, 0, [0, 1], trainer.processes.device))
        for parameter in trainer.generator.transformer.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(2)))
        _, moved = trainer.objective(batch, Draws(0, 0, [0, 1], trainer.processes.device))
    assert float(fresh["keep_video"]) == pytest.approx(0.0, abs=1e-10) and float(fresh["keep_audio"]) == pytest.approx(0.0, abs=1e-10)
    assert float(moved["keep_video"]) > 1e-6 and float(moved["keep_audio"]) > 1e-6


def test_dubbing_and_driving_shares_may_not_exceed_all_steps(small_config):
    with pytest.raises(ValueError, match="drive_probability"):
        small_config("rolling", dub_probability=0.6, drive_probability=0.5)
