"""Clips of the world: a character, a seed and its events, rendered chunk by chunk.

A `Clip` has no length. `clip.render(start_frame, num_frames)` returns any span of frames
with the audio that covers exactly the same time; rendering a clip in chunks gives the
same pixels and samples as rendering it at once, because every block of the timeline is a
pure function of (seed, block index).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import NamedTuple
from dataclasses import dataclass

import numpy as np

from avgen.world.attributes import BACKGROUNDS, EVENTS, FACE_COLOURS, VOICES, Character, matching_ids
from avgen.world.config import WorldConfig
from avgen.world.prompt import describe
from avgen.world.script import BLINK_SECONDS, JUMP_AIRBORNE_SECONDS, BlockScript, block_script
from avgen.world.voice import chime_level, sample_span, synthesize_block, vowel_envelope

# Geometry, as fractions of the frame (positions, motion) or of the face radius (features).
FACE_RADIUS = 0.27  # of min(height, width)
FACE_CENTRE = (0.5, 0.52)  # (x, y) of the frame
BOB = 0.025  # vertical head bob amplitude, of the height
SWAY = 0.02  # horizontal sway amplitude, of the width
JUMP = 0.1  # hop height, of the height
EYE_CENTRES = ((-0.38, -0.28), (0.38, -0.28))  # (u, v) of the face radius
MOUTH_CENTRE_V = 0.45
MOUTH_HALF_WIDTH = 0.3
MOUTH_HALF_HEIGHT = (0.03, 0.25)  # closed, fully open
SPARKLE_CENTRE = (1.15, -1.0)
SPARKLE_SIZE = 0.4

# Mouth width follows the vowel: spread for i/e, rounded for o/u.
VOWEL_MOUTH_WIDTH = {"a": 1.0, "e": 1.15, "i": 1.3, "o": 0.75, "u": 0.6}

MOUTH_RGB = (70, 20, 30)
PUPIL_RGB = (25, 25, 30)
SCLERA_RGB = (250, 250, 250)
GLASSES_RGB = (30, 30, 30)
SPARKLE_RGB = (255, 255, 235)

# Half extents (u, v) of each shape's bounding box, in face radii.
SHAPE_EXTENTS = {"round": (1.0, 1.0), "square": (0.9, 0.9), "oval": (0.8, 1.1), "diamond": (1.25, 1.25)}


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of a face shape at coordinates (u, v) in face radii from its centre."""
    if shape == "round":
        return u**2 + v**2 <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.9
    if shape == "oval":
        return (u / 0.8) ** 2 + (v / 1.1) ** 2 <= 1.0
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.25
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of a span of frames, each field (F,)."""

    head_x: np.ndarray  # face centre, pixels
    head_y: np.ndarray
    openness: np.ndarray  # mouth opening in [0, 1], the mean speech envelope over the frame
    mouth_width: np.ndarray  # relative mouth width, set by the vowel
    eyes_closed: np.ndarray  # bool, blinking
    hop: np.ndarray  # height of a jump in progress, pixels
    sparkle: np.ndarray  # sparkle size in [0, 1], follows the chime's loudness


class _Block(NamedTuple):
    script: BlockScript
    audio: np.ndarray  # (block_samples,) float32
    truth: FrameTruth


@dataclass(frozen=True)
class Chunk:
    frames: np.ndarray  # (F, H, W, 3) uint8
    audio: np.ndarray  # (1, F * samples_per_frame) float32 in [-1, 1]


class Clip:
    """One character talking, forever; reproducible from `seed`.

    Args:
        character: who talks.
        seed: draws speech, blinks, events and head motion.
        events: subset of avgen.world.EVENTS that happen in this clip.
        config: frame rate, size, sample rate.
    """

    def __init__(
        self,
        character: Character,
        seed: int,
        events: frozenset[str] = frozenset(),
        config: WorldConfig | None = None,
    ):
        self.character = character
        self.seed = int(seed)
        self.events = frozenset(events)
        self.config = config or WorldConfig()
        motion = np.random.default_rng([self.seed, 0x5EED])
        self._bob_period = motion.uniform(2.5, 3.5)
        self._bob_phase, self._sway_phase = motion.uniform(0, 2 * np.pi, size=2)
        self._phrasing = int(motion.integers(1 << 16))
        self._blocks: OrderedDict[int, _Block] = OrderedDict()

    @property
    def prompt(self) -> str:
        return describe(self.character, self.events, phrasing=self._phrasing)

    def render(self, start_frame: int, num_frames: int) -> Chunk:
        """Frames [start_frame, start_frame + num_frames) and the audio of the same span."""
        if start_frame < 0 or num_frames < 0:
            raise ValueError(f"start_frame and num_frames must be >= 0, got {start_frame} and {num_frames}")
        truth = self.truth(start_frame, num_frames)
        frames = np.stack([self._draw(truth, i) for i in range(num_frames)]) if num_frames else self._empty_frames()
        return Chunk(frames=frames, audio=self.audio(start_frame, num_frames))

    def audio(self, start_frame: int, num_frames: int) -> np.ndarray:
        """(1, num_frames * samples_per_frame) float32 audio of the given frames."""
        spf = self.config.samples_per_frame
        pieces = [self._block(b).audio[lo * spf : hi * spf] for b, lo, hi in self._spans(start_frame, num_frames)]
        return np.concatenate(pieces or [np.zeros(0, np.float32)])[None]

    def truth(self, start_frame: int, num_frames: int) -> FrameTruth:
        """Per-frame ground truth (head position, mouth, blinks, events) of a span of frames."""
        spans = [(self._block(b).truth, lo, hi) for b, lo, hi in self._spans(start_frame, num_frames)]
        fields = {}
        for name in FrameTruth.__dataclass_fields__:
            parts = [getattr(block_truth, name)[lo:hi] for block_truth, lo, hi in spans]
            fields[name] = np.concatenate(parts) if parts else np.zeros(0)
        return FrameTruth(**fields)

    def script(self, block: int) -> BlockScript:
        """What happens in timeline block `block` (syllables, blinks, landings, chimes)."""
        return self._block(block).script

    def _spans(self, start_frame: int, num_frames: int) -> list[tuple[int, int, int]]:
        """(block, first frame in block, end frame in block) covering the requested frames."""
        n = self.config.block_frames
        spans = []
        frame, end = start_frame, start_frame + num_frames
        while frame < end:
            block, offset = divmod(frame, n)
            stop = min(n, offset + end - frame)
            spans.append((block, offset, stop))
            frame += stop - offset
        return spans

    def _block(self, index: int) -> _Block:
        """Script, audio and frame truth of one block; the last few blocks stay cached."""
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        voice = VOICES[self.character.voice]
        script = block_script(self.seed, index, voice.pitch_hz, self.events, self.config)
        entry = _Block(script, synthesize_block(script, voice, self.config), self._block_truth(index, script))
        self._blocks[index] = entry
        if len(self._blocks) > 4:
            self._blocks.popitem(last=False)
        return entry

    def _block_truth(self, index: int, script: BlockScript) -> FrameTruth:
        cfg = self.config
        n, spf = cfg.block_frames, cfg.samples_per_frame
        local = (np.arange(n) + 0.5) / cfg.fps  # frame centres, seconds from the block start
        absolute = local + index * cfg.block_seconds

        # Mouth: opening follows the summed vowel envelopes; width is their envelope-weighted vowel width.
        envelope = np.zeros(cfg.block_samples)
        weighted_width = np.zeros(cfg.block_samples)
        for syllable in script.syllables:
            start, num = sample_span(syllable.vowel_start, syllable.vowel_seconds, cfg)
            contribution = syllable.amplitude * vowel_envelope(num, cfg.sample_rate)
            envelope[start : start + num] += contribution
            weighted_width[start : start + num] += contribution * VOWEL_MOUTH_WIDTH[syllable.vowel]
        weight = envelope.reshape(n, spf).sum(axis=1)
        mouth_width = np.where(weight > 1e-6, weighted_width.reshape(n, spf).sum(axis=1) / np.maximum(weight, 1e-6), 1.0)
        openness = np.minimum(envelope, 1.0).reshape(n, spf).mean(axis=1)

        eyes_closed = np.zeros(n, dtype=bool)
        for blink in script.blinks:
            eyes_closed |= (local >= blink) & (local < blink + BLINK_SECONDS)
        hop = np.zeros(n)
        for landing in script.landings:
            x = (local - (landing - JUMP_AIRBORNE_SECONDS)) / JUMP_AIRBORNE_SECONDS
            hop += np.where((x >= 0) & (x < 1), 4 * x * (1 - x), 0.0) * JUMP * cfg.height
        sparkle = np.zeros(n)
        for chime in script.chimes:
            sparkle += chime_level(local - chime.start)

        head_x = cfg.width * (FACE_CENTRE[0] + SWAY * np.sin(2 * np.pi * absolute / (1.7 * self._bob_period) + self._sway_phase))
        head_y = cfg.height * (FACE_CENTRE[1] + BOB * np.sin(2 * np.pi * absolute / self._bob_period + self._bob_phase))
        return FrameTruth(
            head_x=head_x,
            head_y=head_y - hop,
            openness=openness,
            mouth_width=np.clip(mouth_width, 0.5, 1.4),
            eyes_closed=eyes_closed,
            hop=hop,
            sparkle=np.minimum(sparkle, 1.0),
        )

    def _empty_frames(self) -> np.ndarray:
        return np.zeros((0, self.config.height, self.config.width, 3), np.uint8)

    def _draw(self, truth: FrameTruth, i: int) -> np.ndarray:
        """Paint frame i of `truth` at `supersample` times the resolution and box-filter it down."""
        cfg = self.config
        character = self.character
        radius = FACE_RADIUS * min(cfg.height, cfg.width)
        canvas = _Canvas(cfg, truth.head_x[i], truth.head_y[i], radius, BACKGROUNDS[character.background])
        face_rgb = np.array(FACE_COLOURS[character.face_colour], dtype=np.float32)
        canvas.paint(face_rgb, (0.0, 0.0), max(SHAPE_EXTENTS[character.shape]), partial(shape_mask, character.shape))
        self._draw_eyes(canvas, face_rgb, closed=bool(truth.eyes_closed[i]))

        half_width = MOUTH_HALF_WIDTH * truth.mouth_width[i]
        half_height = MOUTH_HALF_HEIGHT[0] + (MOUTH_HALF_HEIGHT[1] - MOUTH_HALF_HEIGHT[0]) * truth.openness[i]
        canvas.paint(
            MOUTH_RGB,
            (0.0, MOUTH_CENTRE_V),
            max(half_width, half_height),
            lambda du, dv: (du / half_width) ** 2 + (dv / half_height) ** 2 <= 1.0,
        )
        size = SPARKLE_SIZE * np.sqrt(truth.sparkle[i])  # stays visible for as long as the chime is audible
        if size > 0.02:  # four-pointed star
            star = lambda du, dv: np.sqrt(np.abs(du)) + np.sqrt(np.abs(dv)) <= np.sqrt(size)  # noqa: E731
            canvas.paint(SPARKLE_RGB, SPARKLE_CENTRE, size, star)
        return canvas.downsample()

    def _draw_eyes(self, canvas: _Canvas, face_rgb: np.ndarray, closed: bool):
        style = self.character.eyes
        for eye_u, eye_v in EYE_CENTRES:
            if style == "glasses":
                canvas.paint(GLASSES_RGB, (eye_u, eye_v), 0.26, lambda du, dv: np.abs(np.hypot(du, dv) - 0.23) <= 0.03)
            if closed:
                canvas.paint(PUPIL_RGB, (eye_u, eye_v), 0.17, lambda du, dv: (np.abs(dv) <= 0.035) & (np.abs(du) <= 0.17))
            elif style in ("dot", "glasses"):
                canvas.paint(PUPIL_RGB, (eye_u, eye_v), 0.11, _disc(0.11))
            else:
                canvas.paint(SCLERA_RGB, (eye_u, eye_v), 0.19, _disc(0.19))
                canvas.paint(PUPIL_RGB, (eye_u, eye_v + 0.04), 0.09, _disc(0.09))
                if style == "sleepy":  # heavy upper lid
                    canvas.paint(0.8 * face_rgb, (eye_u, eye_v), 0.2, lambda du, dv: (np.hypot(du, dv) <= 0.2) & (dv < 0))
        if style == "glasses":  # the bridge
            canvas.paint(GLASSES_RGB, (0.0, EYE_CENTRES[0][1]), 0.12, lambda du, dv: np.abs(dv) <= 0.03)


def _disc(radius: float):
    return lambda du, dv: du**2 + dv**2 <= radius**2


class _Canvas:
    """Supersampled RGB canvas addressed in face radii: u to the right, v down, from the face centre."""

    def __init__(self, config: WorldConfig, centre_x: float, centre_y: float, radius: float, background):
        s = config.supersample
        self.supersample = s
        self.pixels = np.empty((config.height * s, config.width * s, 3), np.float32)  # (Hs, Ws, 3)
        self.pixels[:] = background
        self.u = ((np.arange(config.width * s) + 0.5) / s - centre_x) / radius  # (Ws,)
        self.v = ((np.arange(config.height * s) + 0.5) / s - centre_y) / radius  # (Hs,)

    def paint(self, rgb, centre: tuple[float, float], half_extent: float, inside) -> None:
        """Paint `rgb` where `inside(du, dv)` holds, (du, dv) relative to `centre`.

        Only the square of `half_extent` around the centre is tested, which keeps small
        features cheap on a large canvas.
        """
        cu, cv = centre
        columns = slice(np.searchsorted(self.u, cu - half_extent), np.searchsorted(self.u, cu + half_extent, "right"))
        rows = slice(np.searchsorted(self.v, cv - half_extent), np.searchsorted(self.v, cv + half_extent, "right"))
        region = self.pixels[rows, columns]  # a view: writes land on the canvas
        mask = inside(self.u[columns][None, :] - cu, self.v[rows][:, None] - cv)
        region[np.broadcast_to(mask, region.shape[:2])] = rgb

    def downsample(self) -> np.ndarray:
        """Box-filter to the output size, (H, W, 3) uint8."""
        s = self.supersample
        Hs, Ws, _ = self.pixels.shape
        rows = self.pixels.reshape(Hs // s, s, Ws, 3).sum(axis=1)  # (H, Ws, 3); one axis at a time is faster
        small = rows.reshape(Hs // s, Ws // s, s, 3).sum(axis=2) / (s * s)  # (H, W, 3)
        return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def sample_clip(
    seed: int,
    split: str = "train",
    events: frozenset[str] | None = None,
    config: WorldConfig | None = None,
    **attributes: str,
) -> Clip:
    """A clip drawn from `seed`: a character of `split` (matching any given attributes) and its events.

    Args:
        seed: the clip's seed; the same seed and arguments give the same clip.
        split: "train" or "held-out"; held-out characters never appear in "train".
        events: the clip's events; None draws each of EVENTS with probability 1/2.
        attributes: fixed attributes, e.g. shape="round", background="navy".
    """
    rng = np.random.default_rng([int(seed), 0xC11B])
    candidates = matching_ids(split, **attributes)
    if not candidates:
        fixed = ", ".join(f"{name}={value}" for name, value in attributes.items())
        raise ValueError(f"no {split} character has {fixed}: relax an attribute or use the other split")
    character = Character.from_id(candidates[rng.integers(len(candidates))])
    if events is None:
        events = frozenset(event for event in EVENTS if rng.random() < 0.5)
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown event {sorted(unknown)[0]!r}: choose from {', '.join(EVENTS)}")
    return Clip(character, seed, frozenset(events), config)
