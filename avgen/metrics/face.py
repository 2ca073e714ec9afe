"""Find the character in any frames: background colour, face colour and the face's filled mask.

Works from pixels alone (no ground truth): the background is the median colour of the
frame border, the face colour the median of the remaining mid-tone pixels, and the face
mask the pixels near that colour, filled row by row so that the eyes and mouth inside it
count as face. Every shape of the world is convex along rows, so the fill is exact for
world frames and reasonable for generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOREGROUND_DISTANCE = 40.0  # RGB distance from the background that counts as foreground
FACE_DISTANCE = 60.0  # RGB distance from the face colour that counts as face
DARK_LUMA = 60.0  # darker pixels are features (mouth, pupils), not skin
BRIGHT_CHANNEL = 215.0  # pixels with every channel above this are eye whites or sparkles


@dataclass(frozen=True)
class FaceReading:
    background: np.ndarray  # (F, 3) float RGB
    face: np.ndarray  # (F, 3) float RGB, NaN where no face was found
    mask: np.ndarray  # (F, H, W) bool, the face with its features filled in
    found: np.ndarray  # (F,) bool

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(top, bottom, left, right) pixel rows/columns of each mask, inclusive; (F,) each."""
        rows, columns = self.mask.any(axis=2), self.mask.any(axis=1)  # (F, H), (F, W)
        top = rows.argmax(axis=1)
        bottom = rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
        left = columns.argmax(axis=1)
        right = columns.shape[1] - 1 - columns[:, ::-1].argmax(axis=1)
        return top, bottom, left, right


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (..., 3) RGB, same range as the input."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def read_faces(frames: np.ndarray) -> FaceReading:
    """Locate the face in each frame.

    Args:
        frames: (F, H, W, 3) uint8.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3) RGB, got shape {tuple(frames.shape)}")
    pixels = frames.astype(np.float32)  # (F, H, W, 3)
    border = np.concatenate([pixels[:, 0], pixels[:, -1], pixels[:, :, 0], pixels[:, :, -1]], axis=1)
    background = np.median(border, axis=1)  # (F, 3)

    foreground = np.linalg.norm(pixels - background[:, None, None], axis=-1) > FOREGROUND_DISTANCE
    skin = foreground & (luma(pixels) > DARK_LUMA) & ~(pixels.min(axis=-1) > BRIGHT_CHANNEL)  # (F, H, W)
    candidates = np.where(skin[..., None], pixels, np.nan).reshape(len(frames), -1, 3)
    found = skin.reshape(len(frames), -1).any(axis=1)
    face = np.full((len(frames), 3), np.nan, np.float32)
    if found.any():
        face[found] = np.nanmedian(candidates[found], axis=1)

    near_face = np.linalg.norm(pixels - face[:, None, None], axis=-1) < FACE_DISTANCE  # NaN compares False
    width = frames.shape[2]
    has = near_face.any(axis=2, keepdims=True)  # (F, H, 1)
    first = near_face.argmax(axis=2)[..., None]
    last = width - 1 - near_face[:, :, ::-1].argmax(axis=2)[..., None]
    x = np.arange(width)
    mask = has & (x >= first) & (x <= last)  # (F, H, W)
    return FaceReading(background=background, face=face, mask=mask, found=found & mask.any(axis=(1, 2)))
