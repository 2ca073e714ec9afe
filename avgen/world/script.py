"""What happens when: the script of one block of a clip (syllables, blinks, jumps, chimes).

Scripts are drawn from `(clip seed, block index)` alone, and everything in a block starts
and ends inside it, so blocks are independent: a clip has no length and any block can be
rendered first. Times are seconds from the start of the block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from avgen.world.config import WorldConfig

VOWELS = ("a", "e", "i", "o", "u")
# Consonant onsets; "" is a syllable that starts on its vowel.
ONSETS = ("s", "sh", "f", "p", "t", "k", "m", "n")

ONSET_SECONDS = {"": 0.0, "s": 0.09, "sh": 0.10, "f": 0.08, "p": 0.03, "t": 0.035, "k": 0.045, "m": 0.07, "n": 0.07}

JUMP_AIRBORNE_SECONDS = 0.4  # the hop before the landing thud
THUD_SECONDS = 0.35
CHIME_SECONDS = 0.8
BLINK_SECONDS = 0.15
SPEECH_END_MARGIN = 0.12  # release tail of the last vowel


@dataclass(frozen=True)
class Syllable:
    start: float
    onset: str
    vowel: str
    vowel_seconds: float
    pitch_hz: tuple[float, float]  # fundamental at the vowel's start and end (prosody)
    amplitude: float  # in (0, 1]; the mouth opens in proportion
    seed: int  # noise of the consonant

    @property
    def vowel_start(self) -> float:
        return self.start + ONSET_SECONDS[self.onset]

    @property
    def end(self) -> float:
        return self.vowel_start + self.vowel_seconds


@dataclass(frozen=True)
class Chime:
    start: float
    pitch_hz: float


@dataclass(frozen=True)
class BlockScript:
    syllables: tuple[Syllable, ...]
    blinks: tuple[float, ...]  # start of each blink
    landings: tuple[float, ...]  # thud of each jump; the hop starts JUMP_AIRBORNE_SECONDS before
    chimes: tuple[Chime, ...]


def block_script(
    seed: int, block: int, pitch_hz: float, events: frozenset[str], config: WorldConfig
) -> BlockScript:
    """Draw the script of block `block` of the clip with seed `seed`.

    Speech: words of 1-3 syllables, short gaps between words, longer pauses between
    phrases; pitch falls across a phrase (declination), stressed syllables are higher,
    louder and longer, and some phrases end rising like a question.
    """
    rng = np.random.default_rng([seed, block])
    length = config.block_seconds
    syllables: list[Syllable] = []
    t = rng.uniform(0.05, 0.35)
    words_left = rng.integers(2, 5)
    phrase: list[Syllable] = []
    while True:
        word_length = rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])
        stressed = rng.integers(word_length)
        word: list[tuple[str, str, float, bool]] = []
        for i in range(word_length):
            onset = ONSETS[rng.integers(len(ONSETS))] if rng.random() < 0.8 else ""
            vowel = VOWELS[rng.integers(len(VOWELS))]
            seconds = rng.uniform(0.15, 0.24) if i == stressed else rng.uniform(0.09, 0.15)
            word.append((onset, vowel, seconds, i == stressed))
        word_seconds = sum(ONSET_SECONDS[o] + s for o, _, s, _ in word) + 0.03 * (word_length - 1)
        if t + word_seconds > length - SPEECH_END_MARGIN:
            break
        for onset, vowel, seconds, stress in word:
            phrase.append(
                Syllable(
                    start=t,
                    onset=onset,
                    vowel=vowel,
                    vowel_seconds=seconds,
                    pitch_hz=(0.0, 0.0),  # set with the phrase's intonation below
                    amplitude=rng.uniform(0.8, 1.0) if stress else rng.uniform(0.45, 0.75),
                    seed=int(rng.integers(2**31)),
                )
            )
            t += ONSET_SECONDS[onset] + seconds + rng.uniform(0.0, 0.03)
        words_left -= 1
        if words_left == 0:
            syllables += _intonate(phrase, pitch_hz, rng)
            phrase = []
            words_left = rng.integers(2, 5)
            t += rng.uniform(0.3, 0.7)
        else:
            t += rng.uniform(0.06, 0.16)
    syllables += _intonate(phrase, pitch_hz, rng)

    blinks = tuple(sorted(rng.uniform(0.0, length - BLINK_SECONDS, size=rng.integers(1, 3))))
    landings: tuple[float, ...] = ()
    if "jump" in events and rng.random() < config.jump_probability:
        landings = (rng.uniform(JUMP_AIRBORNE_SECONDS + 0.1, length - THUD_SECONDS),)
    chimes: tuple[Chime, ...] = ()
    if "chime" in events and rng.random() < config.chime_probability:
        chimes = (Chime(start=rng.uniform(0.1, length - CHIME_SECONDS), pitch_hz=rng.uniform(2200.0, 2800.0)),)
    return BlockScript(tuple(syllables), blinks, landings, chimes)


def _intonate(phrase: list[Syllable], pitch_hz: float, rng: np.random.Generator) -> list[Syllable]:
    """Give a phrase its pitch contour: declination, stress accents and an optional final rise."""
    question = rng.random() < 0.25
    out = []
    for i, syllable in enumerate(phrase):
        progress = i / max(len(phrase) - 1, 1)
        start = pitch_hz * (1.12 - 0.22 * progress) * (1.0 + 0.12 * (syllable.amplitude - 0.6))
        end = start * (1.25 if question and i == len(phrase) - 1 else 0.95)
        out.append(dataclasses.replace(syllable, pitch_hz=(start, end)))
    return out
