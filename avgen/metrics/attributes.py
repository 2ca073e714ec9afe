"""Read a character's attributes back from frames: face colour, background and face shape.

Colours snap to the nearest entry of the world's palettes; the shape is the world shape
whose template, placed on the face's bounding box, overlaps the face mask best (IoU).
Per-frame readings are combined by majority vote.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from avgen.metrics.face import FaceReading, read_faces
from avgen.world.attributes import BACKGROUNDS, FACE_COLOURS, SHAPES
from avgen.world.clip import SHAPE_EXTENTS, shape_mask

READ_ATTRIBUTES = ("shape", "face_colour", "background")


@dataclass(frozen=True)
class AttributeReading:
    """Clip-level attributes (majority over frames) and the per-frame readings, (F,) each.

    A frame without a detectable face reads as None for shape and face colour.
    """

    shape: str | None
    face_colour: str | None
    background: str
    per_frame: dict[str, list[str | None]]

    def as_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in READ_ATTRIBUTES}


def nearest_name(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> list[str | None]:
    """Palette name nearest to each (F, 3) colour; None for NaN rows."""
    names = list(palette)
    colours = np.array([palette[name] for name in names], dtype=np.float32)  # (P, 3)
    distance = np.linalg.norm(rgb[:, None] - colours[None], axis=-1)  # (F, P)
    valid = ~np.isnan(rgb).any(axis=1)
    return [names[i] if ok else None for i, ok in zip(np.nan_to_num(distance, nan=np.inf).argmin(axis=1), valid)]


def read_shapes(faces: FaceReading) -> list[str | None]:
    """Best-matching world shape for each frame's face mask, by IoU against each template."""
    mask = faces.mask
    F, H, W = mask.shape
    top, bottom, left, right = faces.bounds()
    centre_y, centre_x = (top + bottom + 1) / 2.0, (left + right + 1) / 2.0  # (F,) continuous pixel coords
    half_h, half_w = (bottom - top + 1) / 2.0, (right - left + 1) / 2.0
    ys = np.arange(H)[None, :, None] + 0.5
    xs = np.arange(W)[None, None, :] + 0.5
    scores = []
    for shape in SHAPES:
        extent_u, extent_v = SHAPE_EXTENTS[shape]
        radius = 0.5 * (half_w / extent_u + half_h / extent_v)[:, None, None]  # (F, 1, 1)
        u = (xs - centre_x[:, None, None]) / radius
        v = (ys - centre_y[:, None, None]) / radius
        template = shape_mask(shape, u, v)  # (F, H, W)
        union = (template | mask).sum(axis=(1, 2))
        scores.append((template & mask).sum(axis=(1, 2)) / np.maximum(union, 1))
    best = np.stack(scores, axis=1).argmax(axis=1)  # (F,)
    return [SHAPES[i] if ok else None for i, ok in zip(best, faces.found)]


def read_attributes(frames: np.ndarray, faces: FaceReading | None = None) -> AttributeReading:
    """Attributes of the character in (F, H, W, 3) uint8 frames."""
    faces = faces if faces is not None else read_faces(frames)
    per_frame = {
        "shape": read_shapes(faces),
        "face_colour": nearest_name(faces.face, FACE_COLOURS),
        "background": nearest_name(faces.background, BACKGROUNDS),
    }
    return AttributeReading(**{name: _majority(values) for name, values in per_frame.items()}, per_frame=per_frame)


def agreement(per_frame: dict[str, list[str | None]], expected: dict[str, str]) -> np.ndarray:
    """(F,) fraction of the expected attributes (among READ_ATTRIBUTES) that each frame shows."""
    names = [name for name in READ_ATTRIBUTES if expected.get(name) is not None]
    if not names:
        raise ValueError(f"expected attributes must name at least one of {', '.join(READ_ATTRIBUTES)}")
    hits = np.array([[value == expected[name] for value in per_frame[name]] for name in names], dtype=np.float64)
    return hits.mean(axis=0)


def majority_per_second(values: list[str | None], frames_per_second: int) -> list[str | None]:
    """The majority reading of each whole second of per-frame readings (a trailing part second is dropped)."""
    whole = len(values) - len(values) % frames_per_second
    return [_majority(values[start : start + frames_per_second]) for start in range(0, whole, frames_per_second)]


def _majority(values: list[str | None]) -> str | None:
    counts = Counter(value for value in values if value is not None)
    return counts.most_common(1)[0][0] if counts else None
