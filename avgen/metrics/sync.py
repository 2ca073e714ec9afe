"""Audio-video synchronisation: does the mouth move with the voice, and how far apart are they?

In the spirit of SyncNet's offset / confidence (Chung & Zisserman, 2016), with measured
signals instead of learned embeddings: mouth opening is read from pixels (dark mouth
height inside the lower half of the face) and the voice envelope from the audio (RMS in
the 250-1500 Hz band where vowel formants carry most energy and where the world's thud
and chime have almost none). The offset is the lag that maximises their correlation; the
confidence is that peak minus the median correlation over all lags tried.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avgen.metrics.face import FaceReading, luma, read_faces

SPEECH_BAND_HZ = (250.0, 1500.0)
MAX_LAG_FRAMES = 15
# A clip counts as confidently in sync at or above this. Over 200 held-out clips, audio
# paired with another clip's video scored at most 0.47 and world clips at least 0.91
# (`avgen bench world` measures both).
CONFIDENT = 0.6


@dataclass(frozen=True)
class SyncResult:
    offset: int  # frames by which the audio lags the video (negative: audio leads)
    confidence: float  # peak minus median correlation over the lags tried
    lags: np.ndarray  # (K,) int
    correlations: np.ndarray  # (K,) Pearson correlation at each lag
    # Standard deviation of the mouth opening, in pixels: how much the lips move at all. A mouth
    # that keeps time but barely opens scores a low confidence for a reason this tells apart.
    mouth_motion: float


def mouth_openness(frames: np.ndarray, faces: FaceReading | None = None) -> np.ndarray:
    """Mouth opening of each frame, in pixels of dark height, (F,) float.

    Inside the face mask's lower half, each pixel's darkness relative to the skin
    (0 = skin, 1 = black) is summed down its column; the mean of the three darkest
    columns is the opening (robust to the mouth's width and to anti-aliasing).
    """
    faces = faces if faces is not None else read_faces(frames)
    pixels = frames.astype(np.float32)
    top, bottom, _, _ = faces.bounds()
    centre = (top + bottom) / 2.0  # (F,)
    rows = np.arange(frames.shape[1])[None, :, None]
    lower = faces.mask & (rows > centre[:, None, None])  # (F, H, W)
    skin = np.nan_to_num(luma(faces.face), nan=255.0)[:, None, None]  # (F, 1, 1)
    darkness = np.clip((skin - luma(pixels)) / np.maximum(skin, 1.0), 0.0, 1.0) * lower
    column_height = darkness.sum(axis=1)  # (F, W)
    return np.sort(column_height, axis=1)[:, -3:].mean(axis=1)


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """Speech-band RMS of the audio around each video frame, (num_frames,) float.

    Frame f is measured over a Hann window of two frame lengths centred on the frame's
    centre, so each value covers the same moment as the picture.

    Args:
        audio: (channels, S) or (S,) float in [-1, 1]; channels are averaged.
    """
    mono = np.asarray(audio, dtype=np.float64)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    hop = sample_rate / fps
    length = int(round(2 * hop))
    shortfall = max(0, int(np.ceil(num_frames * hop)) - len(mono))
    padded = np.pad(mono, (length, length + shortfall))
    starts = (length + (np.arange(num_frames) + 0.5) * hop - length / 2).round().astype(int)
    windows = padded[starts[:, None] + np.arange(length)[None]] * np.hanning(length)  # (F, length)
    spectrum = np.abs(np.fft.rfft(windows, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(length, 1.0 / sample_rate)
    band = (frequencies >= SPEECH_BAND_HZ[0]) & (frequencies <= SPEECH_BAND_HZ[1])
    return np.sqrt(spectrum[:, band].sum(axis=1) / length)


def correlate_lags(video: np.ndarray, audio: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of video[f] with audio[f + k] for k in [-max_lag, max_lag]."""
    lags = np.arange(-max_lag, max_lag + 1)
    n = len(video)
    correlations = np.empty(len(lags))
    for i, k in enumerate(lags):
        v = video[max(0, -k) : n - max(0, k)]
        a = audio[max(0, k) : n - max(0, -k)]
        v, a = v - v.mean(), a - a.mean()
        denominator = np.sqrt((v**2).sum() * (a**2).sum())
        correlations[i] = (v * a).sum() / denominator if denominator > 0 else 0.0
    return lags, correlations


def measure_sync(
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float,
    sample_rate: int,
    max_lag: int = MAX_LAG_FRAMES,
    faces: FaceReading | None = None,
) -> SyncResult:
    """Audio-video offset and confidence of a talking-character clip.

    Args:
        frames: (F, H, W, 3) uint8.
        audio: (channels, S) or (S,) float in [-1, 1] covering the same time as the frames.
        max_lag: largest offset tried, in frames (capped at a quarter of the clip).
    """
    num_frames = len(frames)
    envelope = audio_envelope(audio, sample_rate, fps, num_frames)
    return compare_signals(mouth_openness(frames, faces), envelope, max_lag)


def compare_signals(mouth: np.ndarray, envelope: np.ndarray, max_lag: int = MAX_LAG_FRAMES) -> SyncResult:
    """Offset and confidence from per-frame mouth opening and voice envelope, (F,) each."""
    max_lag = min(max_lag, len(mouth) // 4)
    if max_lag < 1:
        raise ValueError(f"sync needs at least 4 frames, got {len(mouth)}")
    lags, correlations = correlate_lags(mouth, envelope, max_lag)
    best = int(np.argmax(correlations))
    return SyncResult(
        offset=int(lags[best]),
        confidence=float(correlations[best] - np.median(correlations)),
        lags=lags,
        correlations=correlations,
        mouth_motion=float(np.std(mouth)),
    )
