from dataclasses import replace

import numpy as np
import pytest

from avgen.metrics import evaluate, measure_drift
from avgen.metrics.calibration import colour_drift
from avgen.metrics.sync import mouth_openness
from avgen.world import Character, Clip, sample_clip


@pytest.fixture(scope="module")
def clip_frames():
    return sample_clip(21, events=frozenset({"jump", "chime"})).render(0, 16 * 12).frames


def test_world_clip_does_not_drift(clip_frames):
    drift = measure_drift(clip_frames, 16)
    assert drift.window_seconds == 5
    assert drift.image_statistics.shape == (12, 6)
    assert drift.delta_drift < 1.0  # 8-bit levels
    assert drift.delta_agreement == 0.0


def test_drifting_colours_give_a_large_delta(clip_frames):
    assert measure_drift(colour_drift(clip_frames), 16).delta_drift > 5.0


def test_character_that_changes_loses_agreement():
    first = Clip(Character("round", "red", "dot", "grey", "deep"), 1).render(0, 96).frames
    second = Clip(Character("square", "blue", "dot", "navy", "deep"), 1).render(96, 96).frames
    drift = measure_drift(np.concatenate([first, second]), 16, reference={"shape": "round", "face_colour": "red"})
    assert drift.window_seconds == 5
    assert drift.delta_agreement > 0.9


def test_a_background_that_lapses_and_comes_back_shows_in_its_seconds_not_in_delta_agreement():
    """Seconds 5 and 6 of 12 on a grey background instead of mint: both windows look fine."""
    clip = Clip(Character("round", "red", "dot", "mint", "deep"), 3)
    frames = clip.render(0, 16 * 12).frames
    frames[5 * 16 : 7 * 16] = Clip(replace(clip.character, background="grey"), 3).render(5 * 16, 2 * 16).frames
    drift = measure_drift(frames, 16, reference={"face_colour": "red", "background": "mint"})
    assert drift.delta_agreement == 0.0
    assert set(drift.seconds_matching) == {"face_colour", "background"}
    assert drift.seconds_matching["face_colour"].all()
    assert np.flatnonzero(~drift.seconds_matching["background"]).tolist() == [5, 6]


def test_short_clips_compare_halves_and_tiny_ones_are_refused(clip_frames):
    assert measure_drift(clip_frames[:64], 16).window_seconds == 2
    with pytest.raises(ValueError, match="at least 2 s"):
        measure_drift(clip_frames[:20], 16)


def test_evaluate_reports_everything_against_the_prompt():
    clip = sample_clip(33)
    chunk = clip.render(0, 160)
    report = evaluate(chunk.frames, chunk.audio, 16, 16000, prompt=clip.prompt)
    sync = report["sync"]
    assert sync == {"offset_frames": 0, "confidence": sync["confidence"], "confident": True, "mouth_motion_pixels": sync["mouth_motion_pixels"]}
    assert sync["mouth_motion_pixels"] == round(float(np.std(mouth_openness(chunk.frames))), 4)
    assert report["adherence"]["score"] == 1.0
    assert report["drift"]["delta_drift_levels"] < 1.0
    assert report["drift"]["seconds_matching"] == {"shape": 1.0, "face_colour": 1.0, "background": 1.0}
    wrong = evaluate(chunk.frames, chunk.audio, 16, 16000, prompt="a purple oval face on a sand background")
    assert wrong["adherence"]["score"] < 1.0
