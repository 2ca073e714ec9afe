import numpy as np

from avgen.metrics import read_attributes
from avgen.metrics.attributes import agreement
from avgen.world import BACKGROUNDS, FACE_COLOURS, SHAPES, Character, Clip


def test_every_shape_colour_and_background_reads_back():
    colours, backgrounds = list(FACE_COLOURS), list(BACKGROUNDS)
    eyes = ("dot", "googly", "sleepy", "glasses")
    for i in range(max(len(colours), len(backgrounds), len(SHAPES) * 2)):
        character = Character(
            SHAPES[i % len(SHAPES)], colours[i % len(colours)], eyes[i % 4], backgrounds[i % len(backgrounds)], "soft"
        )
        frames = Clip(character, seed=i, events=frozenset({"jump", "chime"})).render(0, 48).frames
        reading = read_attributes(frames)
        assert reading.as_dict() == {
            "shape": character.shape,
            "face_colour": character.face_colour,
            "background": character.background,
        }, character
        assert agreement(reading.per_frame, reading.as_dict()).mean() > 0.95


def test_frames_without_a_face_read_as_none():
    frames = np.zeros((4, 64, 64, 3), np.uint8)
    frames[:] = BACKGROUNDS["mint"]
    reading = read_attributes(frames)
    assert reading.shape is None and reading.face_colour is None
    assert reading.background == "mint"
