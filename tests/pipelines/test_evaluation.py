"""`avgen eval`: the figures follow what is generated (checked with pipelines whose output is known)."""

import json
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avgen import RollingForcingPipeline
from avgen.pipelines.evaluation import evaluate_pipeline
from avgen.world.clip import Clip, sample_clip
from avgen.world.paraphrase import EVALUATION_TEMPLATES, evaluation_prompt


class KnownPipeline:
    """Streams, for a held-out prompt, the world's own clip of that prompt (truth=True) or a grey picture."""

    fps, sample_rate = 16, 16000
    config = SimpleNamespace(
        window_attention="joint", guidance_scale=1.0, guidance_from_level=0.0, guidance_area_below_level=0.0, audio_guidance_scale=1.0, audio_guidance_area=1.0
    )

    def __init__(self, truth: bool, seeds: range):
        self.truth = truth
        clips = [(seed, sample_clip(seed, split="held-out")) for seed in seeds]
        self.clips = {clip.prompt: clip for _, clip in clips}
        self.clips.update({evaluation_prompt(clip.character, clip.events, seed): clip for seed, clip in clips})

    def set_progress_bar_config(self, **kwargs):
        pass

    def schedule(self, num_inference_steps, window, dubbing=False):
        return window or 1, True

    def stream(self, prompt, seconds, generator, video=None, audio=None, **settings):
        """Given a video (dubbing), its frames with the clip's own sound (truth) or another held-out clip's;
        given audio, that audio under the clip's own frames or a grey picture."""
        frames = round(seconds * self.fps) if video is None else len(video)
        chunk = self.clips[prompt].render(0, frames)
        pictures = chunk.frames if self.truth else np.full_like(chunk.frames, 128)
        if audio is not None:
            chunk = SimpleNamespace(audio=audio)
        if video is not None:
            pictures = video
            if not self.truth:
                chunk = sample_clip(99, split="held-out").render(0, frames)
        for start in range(0, frames, 4):
            samples = slice(start * 1000, (start + 4) * 1000)
            yield SimpleNamespace(frames=pictures[None, start : start + 4], audio=chunk.audio[None, :, samples])


def test_world_clips_score_perfectly_and_grey_pictures_do_not():
    truth = evaluate_pipeline(KnownPipeline(True, range(3)), clips=3, seconds=4.0)
    assert truth["sync_within_1_frame"] == 1.0 and truth["attribute_adherence"] == 1.0
    assert truth["sync_confidence_median"] > 0.6 and truth["delta_drift_mean"] < 2.0
    grey = evaluate_pipeline(KnownPipeline(False, range(3)), clips=3, seconds=4.0)
    assert grey["attribute_adherence"] < 0.5 and grey["sync_confidence_median"] < 0.6
    assert set(truth["attribute_adherence_by_name"]) == {"face_colour", "background", "shape"}
    assert all(share == 1.0 for share in truth["attribute_adherence_by_name"].values())
    assert len(truth["rows"]) == 3 and {row["seed"] for row in truth["rows"]} == {0, 1, 2}
    assert (truth["guidance_scale"], truth["audio_guidance_scale"]) == (1.0, 1.0)  # the folder's, when the call does not say
    character = sample_clip(0, split="held-out").character
    assert truth["rows"][0]["read"] == {"shape": character.shape, "face_colour": character.face_colour, "background": character.background}
    assert grey["rows"][0]["read"]["face_colour"] != character.face_colour


class LapsingPipeline(KnownPipeline):
    """The world's clips, but the first one's background is another for its seconds 2 and 3."""

    def stream(self, prompt, seconds, generator, **settings):
        clip = self.clips[prompt]
        lapse = Clip(replace(clip.character, background="navy" if clip.character.background != "navy" else "mint"), clip.seed)
        for start, piece in zip(range(0, round(seconds * self.fps), 4), super().stream(prompt, seconds, generator, **settings)):
            if clip is self.first and 2 * self.fps <= start < 4 * self.fps:
                piece.frames = lapse.render(start, 4).frames[None]
            yield piece

    @property
    def first(self):
        return next(iter(self.clips.values()))


def test_the_worst_clip_shows_a_background_lapse_the_majority_reading_hides():
    lapsing = evaluate_pipeline(LapsingPipeline(True, range(2)), clips=2, seconds=8.0)
    assert lapsing["attribute_adherence"] == 1.0  # 6 of 8 seconds still carry the clip's majority
    assert lapsing["rows"][0]["seconds_matching"]["background"] == 0.75
    assert lapsing["rows"][1]["seconds_matching"] == {"shape": 1.0, "face_colour": 1.0, "background": 1.0}
    assert lapsing["seconds_matching_worst_clip"] == {"shape": 1.0, "face_colour": 1.0, "background": 0.75}


def test_held_out_paraphrases_ask_for_the_same_characters_and_are_judged_by_them():
    asked = evaluate_pipeline(KnownPipeline(True, range(3)), clips=3, seconds=4.0, phrasing="paraphrases")
    assert asked["phrasing"] == "paraphrases" and asked["attribute_adherence"] == 1.0
    assert [row["prompt"] for row in asked["rows"]] == [
        evaluation_prompt(sample_clip(seed, split="held-out").character, sample_clip(seed, split="held-out").events, seed) for seed in range(3)
    ]
    assert len({row["prompt"].split()[0] for row in asked["rows"]}) == 3 <= len(EVALUATION_TEMPLATES)


@pytest.fixture(scope="module")
def model(components, tmp_path_factory):
    folder = tmp_path_factory.mktemp("avgen-random")
    RollingForcingPipeline(**components).save_pretrained(folder)
    return folder


def test_eval_command_prints_json_with_one_row_per_clip_in_seed_order(model):
    command = [sys.executable, "-m", "avgen", "eval", "--model", str(model), "--clips", "2", "--seconds", "1", "--seed", "5", "--threads", "1", "--workers", "2", "--json", "--audio-guidance", "1.5", "--guidance", "2"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["clips"] == 2 and figures["steps"] == 4 and [row["seed"] for row in figures["rows"]] == [5, 6]
    assert figures["window_attention"] == "joint"  # the folder's, recorded beside the sampler's other settings
    assert (figures["guidance_scale"], figures["audio_guidance_scale"]) == (2.0, 1.5)  # the command's, over the folder's 1
    assert 0 <= figures["sync_within_1_frame"] <= 1 and figures["realtime_factor_median"] > 0


def test_workers_share_out_the_clips_and_each_row_depends_only_on_its_seed(model):
    pipe = RollingForcingPipeline.from_pretrained(model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' count: sums over more threads round differently
    try:
        alone = evaluate_pipeline(pipe, clips=3, seconds=1.0, seed=2)
    finally:
        torch.set_num_threads(threads)
    shared = evaluate_pipeline(pipe, clips=3, seconds=1.0, seed=2, workers=2, threads=1)
    unclocked = lambda figures: [{k: v for k, v in row.items() if k != "realtime_factor"} for row in figures["rows"]]
    assert [row["seed"] for row in shared["rows"]] == [2, 3, 4]
    assert unclocked(shared) == unclocked(alone)
    assert shared["attribute_adherence"] == alone["attribute_adherence"] and shared["sync_within_1_frame"] == alone["sync_within_1_frame"]


def test_workers_need_a_pipeline_loaded_from_a_folder(rolling):
    with pytest.raises(ValueError, match="save_pretrained"):
        evaluate_pipeline(rolling, clips=2, seconds=1.0, workers=2)


def test_eval_refuses_a_negative_sink(model):
    result = subprocess.run([sys.executable, "-m", "avgen", "eval", "--model", str(model), "--sink-chunks", "-1"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().endswith("--sink-chunks must be >= 0, got -1")


def test_dubbing_scores_the_given_mouth_against_the_made_voice():
    """--dub: the world's own sound under its video syncs; another clip's sound under it does not."""
    truth = evaluate_pipeline(KnownPipeline(True, range(3)), clips=3, seconds=4.0, dub=True)
    other = evaluate_pipeline(KnownPipeline(False, range(3)), clips=3, seconds=4.0, dub=True)
    assert truth["dub"] and truth["sync_within_1_frame"] == 1.0 and truth["sync_confidence_median"] > 0.6
    assert other["sync_confidence_median"] < 0.6
    assert truth["attribute_adherence"] is None and truth["delta_drift_mean"] is None  # the picture was given


def test_driving_scores_the_made_mouth_against_the_given_voice():
    """--drive: the clip's own frames under its given voice sync; a grey picture under it does not."""
    truth = evaluate_pipeline(KnownPipeline(True, range(2)), clips=2, seconds=4.0, drive=True)
    grey = evaluate_pipeline(KnownPipeline(False, range(2)), clips=2, seconds=4.0, drive=True)
    assert truth["drive"] and truth["sync_within_1_frame"] == 1.0 and truth["sync_confidence_median"] > 0.6
    assert grey["sync_confidence_median"] < 0.6 and grey["mouth_motion_median"] < truth["mouth_motion_median"]
    assert truth["attribute_adherence"] == 1.0  # the picture was made: it is judged


def test_the_world_source_scores_the_held_out_clips_themselves_without_generating():
    """The ceiling of every figure: even a pipeline that only makes grey pictures scores the world's."""
    world = evaluate_pipeline(KnownPipeline(False, range(2)), clips=2, seconds=4.0, source="world")
    assert world["source"] == "world" and world["sync_confidence_median"] > 0.9 and world["attribute_adherence"] == 1.0
    assert world["realtime_factor_median"] is None and world["mouth_motion_median"] > 1.0


def test_the_codecs_source_sends_the_clips_through_the_pipelines_codecs(rolling):
    """Each clip is encoded and decoded by the pipeline's (here untrained) codecs, to the clip's length."""
    world = evaluate_pipeline(rolling, clips=1, seconds=2.0, source="world")
    through = evaluate_pipeline(rolling, clips=1, seconds=2.0, source="codecs")
    assert through["source"] == "codecs" and through["realtime_factor_median"] is None
    assert world["rows"][0]["mouth_motion"] != through["rows"][0]["mouth_motion"]  # untrained codecs lose the mouth
    assert through["rows"][0]["read"] != world["rows"][0]["read"]


def test_a_long_clip_scores_its_first_and_last_segments_too():
    long = evaluate_pipeline(KnownPipeline(True, range(1)), clips=1, seconds=40.0)
    assert long["sync_confidence_first_segment_median"] > 0.6 and long["sync_confidence_last_segment_median"] > 0.6
    assert "confidence_first_segment" not in evaluate_pipeline(KnownPipeline(True, range(1)), clips=1, seconds=4.0)["rows"][0]


def test_eval_refuses_two_kinds_of_clip_at_once(model):
    command = [sys.executable, "-m", "avgen", "eval", "--model", str(model), "--dub", "--source", "world"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2 and "choose one of --dub, --drive and --source" in result.stderr
