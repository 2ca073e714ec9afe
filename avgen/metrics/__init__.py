"""Metrics that work on any frames + audio: sync, drift and attributes read back from pixels."""

from __future__ import annotations

import numpy as np

from avgen.metrics.attributes import READ_ATTRIBUTES, AttributeReading, read_attributes
from avgen.metrics.drift import DriftResult, measure_drift
from avgen.metrics.face import read_faces
from avgen.metrics.sync import CONFIDENT, SyncResult, measure_sync
from avgen.world.prompt import parse_prompt

__all__ = [
    "AttributeReading",
    "DriftResult",
    "SyncResult",
    "evaluate",
    "measure_drift",
    "measure_sync",
    "read_attributes",
]


def evaluate(frames: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int, prompt: str | None = None) -> dict:
    """All metrics of one clip as a JSON-ready dict.

    Args:
        frames: (F, H, W, 3) uint8.
        audio: (channels, S) float in [-1, 1], same span as the frames.
        prompt: if given, the attributes it names are compared with those read from the frames.
    """
    faces = read_faces(frames)
    attributes = read_attributes(frames, faces)
    sync = measure_sync(frames, audio, fps, sample_rate, faces=faces)
    report: dict = {
        "frames": len(frames),
        "seconds": round(len(frames) / fps, 3),
        "sync": {
            "offset_frames": sync.offset,
            "confidence": round(sync.confidence, 4),
            "confident": sync.confidence >= CONFIDENT,
            "mouth_motion_pixels": round(sync.mouth_motion, 4),
        },
        "attributes": attributes.as_dict(),
    }
    expected = {name: value for name, value in parse_prompt(prompt)[0].items() if name in READ_ATTRIBUTES} if prompt else {}
    if prompt is not None:
        matches = {name: attributes.as_dict()[name] == value for name, value in expected.items()}
        report["prompt"] = prompt
        report["adherence"] = {
            "matches": matches,
            "score": round(sum(matches.values()) / len(matches), 4) if matches else None,
        }
    if len(frames) >= 2 * round(fps):
        drift = measure_drift(frames, fps, reference=expected or None, attributes=attributes)
        report["drift"] = {
            "delta_drift_levels": round(drift.delta_drift, 4),
            "delta_agreement": round(drift.delta_agreement, 4),
            "window_seconds": drift.window_seconds,
            "agreement_per_second": [round(a, 4) for a in drift.agreement.tolist()],
            # Share of whole seconds whose majority reading is the expected one, per attribute.
            "seconds_matching": {name: round(float(matching.mean()), 4) for name, matching in drift.seconds_matching.items()},
        }
    return report
