"""Long-horizon drift: do the picture and the character stay the same from the first seconds to the last?

Following Rolling Forcing's ΔDrift (the change of a per-second score between the first
and the last 5 s of a video), with two scores that need no learned judge:
  * image statistics: per-channel mean and standard deviation of each second (8-bit levels);
    ΔDrift is the mean absolute change of these six numbers, in levels;
  * attribute agreement: the fraction of frames whose read-back face colour, background and
    shape match a reference (the prompt's attributes, or else the clip's own majority);
    Δagreement is the first window's agreement minus the last window's.
A lapse that comes back (a background that turns grey for two seconds, then mint again) moves
neither window: each second's majority reading, matched against the reference, shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avgen.metrics.attributes import READ_ATTRIBUTES, AttributeReading, agreement, majority_per_second, read_attributes

WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class DriftResult:
    image_statistics: np.ndarray  # (K, 6) per-second RGB means then RGB standard deviations, 8-bit levels
    agreement: np.ndarray  # (K,) per-second attribute agreement in [0, 1]
    delta_drift: float  # mean |stats(last window) - stats(first window)|, 8-bit levels
    delta_agreement: float  # agreement(first window) - agreement(last window)
    window_seconds: float  # length of the first/last windows actually compared
    seconds_matching: dict[str, np.ndarray]  # per reference attribute: (K,) bool, each second's majority matches


def measure_drift(
    frames: np.ndarray,
    fps: float,
    reference: dict[str, str] | None = None,
    attributes: AttributeReading | None = None,
    window_seconds: float = WINDOW_SECONDS,
) -> DriftResult:
    """Per-second statistics and ΔDrift of (F, H, W, 3) uint8 frames.

    Clips shorter than two windows compare their first and last halves instead.

    Args:
        reference: expected attributes (e.g. parsed from the prompt); default: the clip's majority.
        attributes: a reading of these frames, if already made.
    """
    fps_int = int(round(fps))
    seconds = len(frames) // fps_int
    if seconds < 2:
        raise ValueError(f"drift needs at least 2 s of frames, got {len(frames)} frames at {fps} fps")
    frames = frames[: seconds * fps_int]
    pixels = frames.reshape(seconds, -1, 3).astype(np.float64)  # (K, fps * H * W, 3)
    statistics = np.concatenate([pixels.mean(axis=1), pixels.std(axis=1)], axis=1)  # (K, 6)

    attributes = attributes if attributes is not None else read_attributes(frames)
    per_frame = {name: values[: len(frames)] for name, values in attributes.per_frame.items()}
    reference = reference if reference else attributes.as_dict()
    per_second_agreement = agreement(per_frame, reference).reshape(seconds, fps_int).mean(axis=1)

    seconds_matching = {
        name: np.array([reading == reference[name] for reading in majority_per_second(per_frame[name], fps_int)])
        for name in READ_ATTRIBUTES
        if reference.get(name) is not None
    }
    window = int(min(window_seconds, seconds // 2))
    first, last = slice(0, window), slice(seconds - window, seconds)
    return DriftResult(
        image_statistics=statistics,
        agreement=per_second_agreement,
        delta_drift=float(np.abs(statistics[last].mean(axis=0) - statistics[first].mean(axis=0)).mean()),
        delta_agreement=float(per_second_agreement[first].mean() - per_second_agreement[last].mean()),
        window_seconds=float(window),
        seconds_matching=seconds_matching,
    )
