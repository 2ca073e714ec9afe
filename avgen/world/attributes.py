"""Who can appear in the world: attribute vocabularies, characters and the train/held-out split.

A character is one combination of face shape, face colour, eye style, background and voice.
Characters are numbered in mixed radix over the vocabularies below, so a character id is
stable as long as the vocabularies are. About one in ten characters is held out: they never
appear in training data and are used to judge generalisation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache, cache

SHAPES = ("round", "square", "oval", "diamond")

# Saturated face colours and muted backgrounds, picked so that every face colour is far
# (RGB distance > 70) from every background and from every other face colour.
FACE_COLOURS = {
    "red": (215, 60, 55),
    "orange": (240, 145, 40),
    "yellow": (235, 215, 60),
    "green": (60, 170, 70),
    "blue": (60, 100, 210),
    "purple": (140, 70, 180),
    "pink": (240, 130, 180),
    "brown": (140, 90, 50),
}

BACKGROUNDS = {
    "grey": (128, 128, 128),
    "sky-blue": (120, 180, 235),
    "mint": (150, 220, 170),
    "lavender": (195, 165, 225),
    "sand": (225, 200, 150),
    "navy": (35, 45, 95),
}

EYES = ("dot", "googly", "sleepy", "glasses")


@dataclass(frozen=True)
class Voice:
    """Pitch and timbre of a character's speech.

    pitch_hz is the mean fundamental; tilt_db_per_octave the spectral slope of the glottal
    source (steeper sounds darker); formant_scale shortens or lengthens the vocal tract.
    """

    pitch_hz: float
    tilt_db_per_octave: float
    formant_scale: float


VOICES = {
    "deep": Voice(pitch_hz=100.0, tilt_db_per_octave=-12.0, formant_scale=0.92),
    "soft": Voice(pitch_hz=160.0, tilt_db_per_octave=-10.0, formant_scale=1.0),
    "bright": Voice(pitch_hz=230.0, tilt_db_per_octave=-6.0, formant_scale=1.1),
    "squeaky": Voice(pitch_hz=320.0, tilt_db_per_octave=-4.0, formant_scale=1.22),
}

# Non-speech events: each is heard and seen at the same moment.
#   jump:  the character hops and lands with a thud.
#   chime: a bell rings and a sparkle twinkles beside the head while it rings.
EVENTS = ("jump", "chime")

VOCABULARIES = {
    "shape": SHAPES,
    "face_colour": tuple(FACE_COLOURS),
    "eyes": EYES,
    "background": tuple(BACKGROUNDS),
    "voice": tuple(VOICES),
}


def check_attribute(name: str, value: str) -> None:
    """Raise a ValueError that lists the choices when `value` is not in the vocabulary `name`."""
    if name not in VOCABULARIES:
        raise ValueError(f"unknown attribute {name!r}: choose from {', '.join(VOCABULARIES)}")
    if value not in VOCABULARIES[name]:
        label = name.replace("_", " ")
        raise ValueError(f"unknown {label} {value!r}: choose one of {', '.join(VOCABULARIES[name])}")


@dataclass(frozen=True)
class Character:
    shape: str
    face_colour: str
    eyes: str
    background: str
    voice: str

    def __post_init__(self):
        for name in VOCABULARIES:
            check_attribute(name, getattr(self, name))

    @property
    def id(self) -> int:
        """Mixed-radix index over VOCABULARIES, in [0, num_characters())."""
        index = 0
        for name, vocabulary in VOCABULARIES.items():
            index = index * len(vocabulary) + vocabulary.index(getattr(self, name))
        return index

    @classmethod
    def from_id(cls, character_id: int) -> Character:
        if not 0 <= character_id < num_characters():
            raise ValueError(f"character id must be in [0, {num_characters()}), got {character_id}")
        values = {}
        for name, vocabulary in reversed(VOCABULARIES.items()):
            character_id, digit = divmod(character_id, len(vocabulary))
            values[name] = vocabulary[digit]
        return cls(**values)


def num_characters() -> int:
    count = 1
    for vocabulary in VOCABULARIES.values():
        count *= len(vocabulary)
    return count


def _mix(value: int) -> int:
    """splitmix64 finaliser: a fixed, platform-independent hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def is_held_out(character_id: int) -> bool:
    """One character in ten, chosen by a fixed hash, never appears in training."""
    return _mix(character_id) % 10 == 0


SPLITS = ("train", "held-out")


@cache
def split_ids(split: str) -> tuple[int, ...]:
    """Character ids of a split ("train" or "held-out"), in increasing order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    held_out = split == "held-out"
    return tuple(i for i in range(num_characters()) if is_held_out(i) == held_out)


def matching_ids(split: str, **attributes: str) -> tuple[int, ...]:
    """Ids in `split` whose attributes equal the given ones (e.g. shape="round")."""
    for name, value in attributes.items():
        check_attribute(name, value)
    return tuple(
        i
        for i in split_ids(split)
        if all(getattr(Character.from_id(i), name) == value for name, value in attributes.items())
    )


def all_characters() -> list[Character]:
    return [Character(*values) for values in itertools.product(*VOCABULARIES.values())]
