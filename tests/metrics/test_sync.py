import numpy as np
import pytest

from avgen.metrics.calibration import calibrate, shift_audio
from avgen.metrics.sync import CONFIDENT, measure_sync
from avgen.world import sample_clip


@pytest.fixture(scope="module")
def figures():
    """The metric bars, on 30 held-out clips of 10 s (`avgen bench world` runs the full 200)."""
    return calibrate(clips=30, seconds=10.0, split="held-out", seed=100)


def test_world_clips_are_in_sync_with_high_confidence(figures):
    assert figures["sync_offset_zero"] == 1.0
    assert figures["sync_offset_zero_and_confident"] == 1.0


def test_confidence_separates_matched_from_mismatched_audio(figures):
    assert figures["mismatched_confidence_max"] < CONFIDENT < figures["sync_confidence_min"]


def test_shifted_audio_is_detected_within_one_frame(figures):
    assert figures["shift_trials"] == 30 * 12
    assert figures["shift_detected_within_1"] >= 0.95


def test_sign_convention_audio_late_is_positive():
    clip = sample_clip(3)
    chunk = clip.render(0, 160)
    late = measure_sync(chunk.frames, shift_audio(chunk.audio, 3, 1000), 16, 16000)
    early = measure_sync(chunk.frames, shift_audio(chunk.audio, -3, 1000), 16, 16000)
    assert late.offset == 3 and early.offset == -3


def test_sync_accepts_mono_vectors_and_rejects_tiny_clips():
    chunk = sample_clip(3).render(0, 64)
    assert measure_sync(chunk.frames, chunk.audio[0], 16, 16000).offset == 0
    with pytest.raises(ValueError, match="at least 4 frames"):
        measure_sync(chunk.frames[:3], chunk.audio[:, :3000], 16, 16000)


def test_silent_or_faceless_input_does_not_crash():
    frames = np.full((32, 64, 64, 3), 128, np.uint8)
    result = measure_sync(frames, np.zeros((1, 32_000), np.float32), 16, 16000)
    assert result.confidence < CONFIDENT
