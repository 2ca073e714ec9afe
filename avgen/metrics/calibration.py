"""Check the metrics against the world's ground truth (`avgen bench world`).

On rendered clips the truth is known: audio and video are in sync, the attributes are those
of the character, and nothing drifts. A metric is only worth reporting on generated clips
if, here, it finds offset 0, recovers a known audio shift, reads the attributes back and
tells a steady clip from one whose colours drift.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from avgen.metrics.attributes import READ_ATTRIBUTES, read_attributes
from avgen.metrics.drift import measure_drift
from avgen.metrics.face import read_faces
from avgen.metrics.sync import CONFIDENT, SyncResult, audio_envelope, compare_signals, mouth_openness
from avgen.world.clip import sample_clip
from avgen.world.config import WorldConfig

SHIFTS = (-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6)


def colour_drift(frames: np.ndarray, strength: float = 0.35, tint=(255, 0, 255)) -> np.ndarray:
    """Blend frames towards `tint`, from 0 at the first frame to `strength` at the last: a drifting clip."""
    weight = np.linspace(0.0, strength, len(frames))[:, None, None, None]
    return np.rint(frames * (1 - weight) + np.array(tint) * weight).astype(np.uint8)


def shift_audio(audio: np.ndarray, frames: int, samples_per_frame: int) -> np.ndarray:
    """Delay (frames > 0) or advance (frames < 0) (channels, S) audio by whole frames, zero-filled."""
    shifted = np.zeros_like(audio)
    n = frames * samples_per_frame
    if n > 0:
        shifted[:, n:] = audio[:, :-n]
    elif n < 0:
        shifted[:, :n] = audio[:, -n:]
    else:
        shifted[:] = audio
    return shifted


def calibrate(
    clips: int = 200, seconds: float = 10.0, split: str = "held-out", seed: int = 0, progress: bool = False
) -> dict:
    """Metric figures over `clips` rendered clips; see the module docstring for what each shows."""
    config = WorldConfig()
    num_frames = int(seconds * config.fps)
    spf = config.samples_per_frame
    rows = []
    for clip_seed in _progress(range(seed, seed + clips), progress):
        clip = sample_clip(clip_seed, split=split, config=config)
        chunk = clip.render(0, num_frames)
        faces = read_faces(chunk.frames)
        mouth = mouth_openness(chunk.frames, faces)

        def sync(audio: np.ndarray) -> SyncResult:
            return compare_signals(mouth, audio_envelope(audio, config.sample_rate, config.fps, num_frames))

        own = sync(chunk.audio)
        detected = [sync(shift_audio(chunk.audio, k, spf)).offset for k in SHIFTS]
        stranger = sample_clip(clip_seed + 10**6, split=split, config=config).audio(0, num_frames)
        attributes = read_attributes(chunk.frames, faces)
        truth = {name: getattr(clip.character, name) for name in READ_ATTRIBUTES}
        rows.append(
            {
                "offset": own.offset,
                "confidence": own.confidence,
                "shift_errors": [d - k for d, k in zip(detected, SHIFTS)],
                "mismatched_confidence": sync(stranger).confidence,
                "attributes": {name: attributes.as_dict()[name] == truth[name] for name in READ_ATTRIBUTES},
                "drift": measure_drift(chunk.frames, config.fps, attributes=attributes).delta_drift,
                "drifting": measure_drift(colour_drift(chunk.frames), config.fps).delta_drift,
            }
        )
    return _summarise(rows, clips, seconds, split)


def _summarise(rows: list[dict], clips: int, seconds: float, split: str) -> dict:
    confidence = np.array([r["confidence"] for r in rows])
    mismatched = np.array([r["mismatched_confidence"] for r in rows])
    offsets = np.array([r["offset"] for r in rows])
    shift_errors = np.array([r["shift_errors"] for r in rows])
    drift = np.array([r["drift"] for r in rows])
    drifting = np.array([r["drifting"] for r in rows])
    return {
        "clips": clips,
        "seconds": seconds,
        "split": split,
        "sync_offset_zero": float((offsets == 0).mean()),
        "sync_offset_zero_and_confident": float(((offsets == 0) & (confidence >= CONFIDENT)).mean()),
        "sync_confidence_min": float(confidence.min()),
        "sync_confidence_median": float(np.median(confidence)),
        "mismatched_confidence_max": float(mismatched.max()),
        "mismatched_confidence_median": float(np.median(mismatched)),
        "confident_threshold": CONFIDENT,
        "shift_detected_within_1": float((np.abs(shift_errors) <= 1).mean()),
        "shift_detected_exactly": float((shift_errors == 0).mean()),
        "shift_trials": int(shift_errors.size),
        "attribute_readback": {
            name: float(np.mean([r["attributes"][name] for r in rows])) for name in READ_ATTRIBUTES
        },
        "attribute_readback_all": float(np.mean([all(r["attributes"].values()) for r in rows])),
        "delta_drift_world_mean": float(drift.mean()),
        "delta_drift_world_max": float(drift.max()),
        "delta_drift_drifting_min": float(drifting.min()),
        "delta_drift_drifting_mean": float(drifting.mean()),
    }


def _progress(items: range, enabled: bool) -> Iterator[int]:
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, desc="calibrating metrics", unit="clip"))
