"""The motion-weighted loss puts weight where the video changes (the mouth), and nowhere else."""

import pytest
import torch

from avgen.training.motion import motion, motion_loss_weight
from avgen.training.objectives import Draws, MutualForcing, per_sample_mse
from avgen.training.trainer import Trainer


def blinking_pixel() -> torch.Tensor:
    """(1, 2, 5, 3, 3): a still clip whose centre position changes by 0.5 at frame 2 only."""
    video = torch.zeros(1, 2, 5, 3, 3)
    video[0, 1, 2, 1, 1] = 0.5
    return video


def test_motion_marks_the_changed_position_in_the_frames_around_the_change():
    moved = motion(blinking_pixel())
    assert moved.shape == (1, 1, 5, 3, 3)
    assert moved[0, 0, :, 1, 1].tolist() == [0.0, 0.5, 0.5, 0.5, 0.0]
    moved[0, 0, :, 1, 1] = 0
    assert moved.abs().max() == 0


def test_loss_weight_is_one_without_motion_weight_and_amplifies_moving_positions_with_it():
    video = blinking_pixel()
    assert torch.equal(motion_loss_weight(video, 0.0), torch.ones(1, 1, 5, 3, 3))
    error = torch.zeros_like(video)
    error[0, 0, 2, 1, 1] = 1.0  # an error at the moving position
    still_error = torch.zeros_like(video)
    still_error[0, 0, 2, 0, 0] = 1.0  # the same error where nothing moves
    weight = motion_loss_weight(video, 4.0)
    moving, still = per_sample_mse(error, 0 * error, weight), per_sample_mse(still_error, 0 * error, weight)
    assert moving.item() == pytest.approx(3 * still.item())  # 1 + 4 * 0.5


def test_mutual_forcing_weighs_its_one_frame_chunk_by_the_motion_around_it_in_the_clip(small_config, monkeypatch):
    """A one-frame chunk has no motion of its own: its weights must come from the whole clip."""
    trainer = Trainer(small_config("mutual_forcing", steps=1, motion_weight=4.0), progress=False)
    objective: MutualForcing = trainer.objective
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    batch["video"] = torch.zeros_like(batch["video"])
    batch["video"][:, :, 1::2] = 1.0  # every other chunk flips the picture: every chunk moves
    seen = {}
    monkeypatch.setattr(objective, "window_losses", lambda cache, noisy, real, video_weight, *rest, **kw: seen.update(weight=video_weight))
    objective.losses(batch, Draws(0, 0, [0, 1], trainer.processes.device))
    assert seen["weight"].shape == (2, 1, 1, *batch["video"].shape[3:])
    assert torch.all(seen["weight"] == 5.0)
