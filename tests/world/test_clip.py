import numpy as np
import pytest

from avgen.metrics.face import read_faces
from avgen.metrics.sync import mouth_openness
from avgen.world import Character, Clip, WorldConfig, describe, parse_prompt, sample_clip
from avgen.world.script import ONSETS, VOWELS, block_script

EVENTFUL = WorldConfig(jump_probability=1.0, chime_probability=1.0)


@pytest.fixture(scope="module")
def clip():
    return sample_clip(11, events=frozenset({"jump", "chime"}))


@pytest.fixture(scope="module")
def twenty_seconds(clip):
    return clip.render(0, 320)


def band_rms(audio: np.ndarray, spf: int, low: float, high: float, sample_rate: int = 16000) -> np.ndarray:
    """(F,) RMS of each frame's samples inside [low, high] Hz."""
    frames = audio[0].reshape(-1, spf)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(spf, 1 / sample_rate)
    return np.sqrt(spectrum[:, (frequencies >= low) & (frequencies <= high)].sum(axis=1))


def test_defaults_are_16_fps_64_pixels_16_khz(twenty_seconds):
    assert twenty_seconds.frames.shape == (320, 64, 64, 3)
    assert twenty_seconds.frames.dtype == np.uint8
    assert twenty_seconds.audio.shape == (1, 320_000)
    assert twenty_seconds.audio.dtype == np.float32
    assert np.abs(twenty_seconds.audio).max() <= 1.0


def test_same_seed_same_clip_other_seed_other_clip(twenty_seconds):
    again = sample_clip(11, events=frozenset({"jump", "chime"})).render(0, 320)
    assert np.array_equal(again.frames, twenty_seconds.frames)
    assert np.array_equal(again.audio, twenty_seconds.audio)
    other = sample_clip(12, events=frozenset({"jump", "chime"})).render(0, 320)
    assert not np.array_equal(other.audio, twenty_seconds.audio)


def test_chunked_rendering_equals_whole_rendering(clip, twenty_seconds):
    fresh = Clip(clip.character, clip.seed, clip.events)
    bounds = [0, 1, 17, 64, 65, 150, 151, 320]  # crosses timeline blocks at odd places
    chunks = [fresh.render(a, b - a) for a, b in zip(bounds, bounds[1:])]
    assert np.array_equal(np.concatenate([c.frames for c in chunks]), twenty_seconds.frames)
    assert np.array_equal(np.concatenate([c.audio for c in chunks], axis=1), twenty_seconds.audio)


def test_any_frame_renders_without_rendering_the_past(clip):
    ten_minutes = 10 * 60 * 16
    late = Clip(clip.character, clip.seed, clip.events).render(ten_minutes, 16)
    around = Clip(clip.character, clip.seed, clip.events).render(ten_minutes - 40, 80)
    assert np.array_equal(late.frames, around.frames[40:56])
    assert np.array_equal(late.audio, around.audio[:, 40_000:56_000])


def test_size_rate_and_fps_are_configurable():
    config = WorldConfig(fps=25, height=96, width=128, sample_rate=16000)
    chunk = sample_clip(0, config=config).render(0, 50)
    assert chunk.frames.shape == (50, 96, 128, 3)
    assert chunk.audio.shape == (1, 50 * 640)
    with pytest.raises(ValueError, match="multiple of fps"):
        WorldConfig(fps=15, sample_rate=16000 + 1)


def test_mouth_follows_the_voice_frame_by_frame(clip, twenty_seconds):
    truth = clip.truth(0, 320)
    voice = band_rms(twenty_seconds.audio, 1000, 250, 1500)
    assert np.corrcoef(truth.openness, voice)[0, 1] > 0.85
    drawn = mouth_openness(twenty_seconds.frames)
    assert np.corrcoef(truth.openness, drawn)[0, 1] > 0.95


def test_speech_has_syllables_pauses_and_prosody():
    character = Character("round", "red", "dot", "grey", "soft")
    scripts = [block_script(5, block, 160.0, frozenset(), WorldConfig()) for block in range(6)]
    syllables = [s for script in scripts for s in script.syllables]
    assert {s.vowel for s in syllables} == set(VOWELS) and len(VOWELS) >= 5
    assert {s.onset for s in syllables} >= set(ONSETS) and len(ONSETS) >= 6
    pitches = np.array([s.pitch_hz[0] for s in syllables])
    assert pitches.std() / pitches.mean() > 0.05  # intonation, not a monotone
    gaps = np.array([b.start - a.end for a, b in zip(syllables, syllables[1:]) if b.start > a.start])
    assert (gaps > 0.25).sum() >= 6  # phrase pauses
    openness = Clip(character, 5).truth(0, 6 * 64).openness
    assert 0.1 < (openness < 0.05).mean() < 0.7  # silent frames between syllables and phrases


def test_voices_differ_in_pitch():
    def centroid(voice: str) -> float:
        audio = Clip(Character("round", "red", "dot", "grey", voice), 3).audio(0, 160)[0]
        spectrum = np.abs(np.fft.rfft(audio))
        frequencies = np.fft.rfftfreq(len(audio), 1 / 16000)
        low = frequencies < 1000  # where the fundamental and first harmonics lie
        return float((spectrum[low] * frequencies[low]).sum() / spectrum[low].sum())

    assert centroid("deep") < centroid("soft") < centroid("bright") < centroid("squeaky")


def test_eyes_blink():
    clip = sample_clip(4, eyes="googly")
    truth = clip.truth(0, 320)
    assert truth.eyes_closed.any() and not truth.eyes_closed.all()
    frames = clip.render(0, 320).frames
    whites = (frames.min(axis=-1) > 230).sum(axis=(1, 2))  # eye whites visible
    assert whites[truth.eyes_closed].max() < whites[~truth.eyes_closed].min()


def test_head_moves():
    truth = sample_clip(2, events=frozenset()).truth(0, 160)
    assert np.ptp(truth.head_y) > 1.0 and np.ptp(truth.head_x) > 1.0


def test_jump_is_seen_when_the_thud_is_heard():
    clip = sample_clip(8, events=frozenset({"jump"}), config=EVENTFUL)
    chunk = clip.render(0, 64)
    truth = clip.truth(0, 64)
    landing = clip.script(0).landings[0]
    landing_frame = int(landing * 16)
    thud = band_rms(chunk.audio, 1000, 20, 120)
    assert abs(int(thud.argmax()) - landing_frame) <= 1
    top, _, _, _ = read_faces(chunk.frames).bounds()
    airborne = truth.hop > 2.0
    assert airborne[landing_frame - 4 : landing_frame].all()
    assert top[airborne].mean() < top[~airborne].mean() - 2  # the face is higher in the frame


def test_sparkle_is_seen_while_the_chime_rings():
    # The same seed without the chime event has the same speech, so the difference is the chime alone.
    with_chime = sample_clip(9, events=frozenset({"chime"}), config=EVENTFUL).render(0, 64)
    without = sample_clip(9, events=frozenset(), config=EVENTFUL).render(0, 64)
    chime = np.sqrt(((with_chime.audio - without.audio)[0].reshape(64, -1) ** 2).mean(axis=1))
    heard, clearly_heard = chime > 0, chime > 0.05 * chime.max()
    seen = (with_chime.frames != without.frames).any(axis=(1, 2, 3))
    assert 5 <= clearly_heard.sum() < 40
    assert not (seen & ~heard).any()
    assert seen[clearly_heard].all()


def test_prompts_name_the_character_in_several_phrasings():
    phrasings = set()
    for seed in range(40):
        clip = sample_clip(seed)
        attributes, events = parse_prompt(clip.prompt)
        assert attributes == {name: getattr(clip.character, name) for name in attributes}
        assert len(attributes) == 5
        assert events == clip.events
        phrasings.add(clip.prompt.split()[1])
    assert len(phrasings) >= 3
    character = Character("diamond", "pink", "glasses", "navy", "squeaky")
    assert len({describe(character, frozenset({"jump"}), p) for p in range(8)}) >= 4


def test_held_out_clips_draw_held_out_characters():
    from avgen.world import is_held_out

    assert all(is_held_out(sample_clip(seed, split="held-out").character.id) for seed in range(30))
    assert not any(is_held_out(sample_clip(seed).character.id) for seed in range(30))


def test_bad_requests_are_explained():
    with pytest.raises(ValueError, match="unknown event 'fly'"):
        sample_clip(0, events=frozenset({"fly"}))
    with pytest.raises(ValueError, match="unknown face colour 'magenta'"):
        sample_clip(0, face_colour="magenta")
    with pytest.raises(ValueError, match=">= 0"):
        sample_clip(0).render(-1, 4)
