"""Sound of the world: speech-like syllables, the landing thud and the chime.

Vowels are additive-synthesis voiced sources (every harmonic of a gliding fundamental,
weighted by a three-formant resonance and a spectral tilt); consonants are shaped noise
(fricatives), closure + burst (plosives) or a low voiced murmur (nasals). Everything is
mono float audio at the world's sample rate; a block's audio is a pure function of its
script, so chunked and whole synthesis agree sample for sample.
"""

from __future__ import annotations

import numpy as np

from avgen.world.attributes import Voice
from avgen.world.config import WorldConfig
from avgen.world.script import CHIME_SECONDS, ONSET_SECONDS, THUD_SECONDS, BlockScript, Chime, Syllable

# (F1, F2, F3) in Hz of an adult vocal tract; scaled by Voice.formant_scale.
VOWEL_FORMANTS = {
    "a": (800.0, 1200.0, 2500.0),
    "e": (500.0, 1900.0, 2500.0),
    "i": (300.0, 2300.0, 3000.0),
    "o": (500.0, 900.0, 2400.0),
    "u": (320.0, 800.0, 2300.0),
}
FORMANT_BANDWIDTHS = (90.0, 110.0, 160.0)
FORMANT_GAINS = (1.0, 0.5, 0.2)

# Noise band (Hz) and level of each consonant onset; nasals are voiced instead.
FRICATIVES = {"s": (4000.0, 7500.0, 0.30), "sh": (2000.0, 4200.0, 0.35), "f": (1200.0, 7000.0, 0.12)}
PLOSIVES = {"p": (300.0, 3000.0, 0.45), "t": (3000.0, 6500.0, 0.40), "k": (1500.0, 3000.0, 0.45)}
NASAL_LEVEL = 0.12
BURST_SECONDS = 0.012

VOWEL_PEAK = 0.6
THUD_PEAK = 0.5
CHIME_PEAK = 0.3
CHIME_DECAY_SECONDS = 0.25
ATTACK_SECONDS = 0.025
RELEASE_SECONDS = 0.07


def vowel_envelope(num_samples: int, sample_rate: int) -> np.ndarray:
    """Amplitude envelope of one vowel, (num_samples,) in [0, 1]: raised-cosine attack and release.

    The same curve drives the loudness of the vowel and the opening of the mouth.
    """
    envelope = np.ones(num_samples)
    attack = min(int(ATTACK_SECONDS * sample_rate), num_samples // 2)
    release = min(int(RELEASE_SECONDS * sample_rate), num_samples - attack)
    envelope[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    envelope[num_samples - release :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 1) / release)
    return envelope


def synthesize_block(script: BlockScript, voice: Voice, config: WorldConfig) -> np.ndarray:
    """Mono audio of one block, (block_samples,) float32 in [-1, 1]."""
    sr = config.sample_rate
    audio = np.zeros(config.block_samples)
    for syllable in script.syllables:
        onset_start, onset_num = sample_span(syllable.start, ONSET_SECONDS[syllable.onset], config)
        if onset_num:
            audio[onset_start : onset_start + onset_num] += _onset(syllable, onset_num, sr)
        start, num = sample_span(syllable.vowel_start, syllable.vowel_seconds, config)
        audio[start : start + num] += syllable.amplitude * _vowel(syllable, voice, num, sr)
    for landing in script.landings:
        start, num = sample_span(landing, THUD_SECONDS, config)
        audio[start : start + num] += _thud(num, sr)
    for chime in script.chimes:
        start, num = sample_span(chime.start, CHIME_SECONDS, config)
        audio[start : start + num] += _chime(chime, num, sr)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def chime_level(seconds_since_strike: np.ndarray) -> np.ndarray:
    """Loudness of a chime over time, in [0, 1]; zero before the strike and after it ends."""
    t = np.asarray(seconds_since_strike, dtype=np.float64)
    inside = (t >= 0) & (t < CHIME_SECONDS)
    return np.where(inside, np.exp(-np.clip(t, 0, None) / CHIME_DECAY_SECONDS), 0.0)


def sample_span(start_seconds: float, seconds: float, config: WorldConfig) -> tuple[int, int]:
    """First sample and sample count of an interval of a block, clipped to the block's end."""
    start = int(round(start_seconds * config.sample_rate))
    num = int(round(seconds * config.sample_rate))
    return start, max(0, min(num, config.block_samples - start))


def _vowel(syllable: Syllable, voice: Voice, num_samples: int, sample_rate: int) -> np.ndarray:
    """Voiced vowel with a gliding pitch and light vibrato, peak VOWEL_PEAK, (num_samples,)."""
    t = np.arange(num_samples) / sample_rate
    start_hz, end_hz = syllable.pitch_hz
    f0 = start_hz * (end_hz / start_hz) ** (t / max(t[-1], 1e-9)) * (1.0 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = np.arange(1, int((sample_rate / 2 - 400) // f0.max()) + 1)[:, None]  # (K, 1)
    frequencies = harmonics * f0[None]  # (K, S)
    formants = np.array(VOWEL_FORMANTS[syllable.vowel]) * voice.formant_scale
    resonance = sum(
        gain / (1.0 + ((frequencies - centre) / width) ** 2)
        for centre, width, gain in zip(formants, FORMANT_BANDWIDTHS, FORMANT_GAINS)
    )
    tilt = 10.0 ** (voice.tilt_db_per_octave * np.log2(harmonics) / 20.0)
    wave = (resonance * tilt * np.sin(harmonics * phase[None])).sum(axis=0)
    wave *= VOWEL_PEAK / np.abs(wave).max()
    return wave * vowel_envelope(num_samples, sample_rate)


def _onset(syllable: Syllable, num_samples: int, sample_rate: int) -> np.ndarray:
    """Consonant before the vowel, (num_samples,)."""
    rng = np.random.default_rng(syllable.seed)
    if syllable.onset in FRICATIVES:
        low, high, level = FRICATIVES[syllable.onset]
        return level * _band_noise(rng, num_samples, sample_rate, low, high) * np.hanning(num_samples)
    if syllable.onset in PLOSIVES:
        low, high, level = PLOSIVES[syllable.onset]
        burst = min(int(BURST_SECONDS * sample_rate), num_samples)
        out = np.zeros(num_samples)  # the closure is silent
        decay = np.exp(-np.arange(burst) / (0.3 * burst))
        out[num_samples - burst :] = level * _band_noise(rng, burst, sample_rate, low, high) * decay
        return out
    # Nasal: a murmur at the fundamental with the mouth closed, leading into the vowel.
    t = np.arange(num_samples) / sample_rate
    f0 = syllable.pitch_hz[0]
    murmur = np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(4 * np.pi * f0 * t)
    return NASAL_LEVEL * murmur * np.hanning(num_samples)  # no click at either end


def _thud(num_samples: int, sample_rate: int) -> np.ndarray:
    """Low, fast-decaying body thump (70 Hz falling to 45 Hz), (num_samples,)."""
    t = np.arange(num_samples) / sample_rate
    frequency = 45.0 + 25.0 * np.exp(-t / 0.08)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    envelope = (1.0 - np.exp(-t / 0.004)) * np.exp(-t / 0.09)
    return THUD_PEAK * envelope * np.sin(phase)


def _chime(chime: Chime, num_samples: int, sample_rate: int) -> np.ndarray:
    """Bell-like partials with a fast strike and exponential ring-out, (num_samples,)."""
    t = np.arange(num_samples) / sample_rate
    partials = sum(
        gain * np.sin(2 * np.pi * ratio * chime.pitch_hz * t)
        for ratio, gain in ((1.0, 1.0), (2.0, 0.4), (2.76, 0.25))
        if ratio * chime.pitch_hz < sample_rate / 2
    )
    strike = 1.0 - np.exp(-t / 0.002)
    return CHIME_PEAK / 1.65 * strike * chime_level(t) * partials


def _band_noise(rng: np.random.Generator, num_samples: int, sample_rate: int, low: float, high: float) -> np.ndarray:
    """White noise band-limited to [low, high] Hz, unit RMS, (num_samples,)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    spectrum[(frequencies < low) | (frequencies > high)] = 0.0
    noise = np.fft.irfft(spectrum, num_samples)
    return noise / max(np.sqrt(np.mean(noise**2)), 1e-9)
