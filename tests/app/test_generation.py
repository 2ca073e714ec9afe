import numpy as np
import pytest
import torch

from avgen.app.config import AppConfig
from avgen.app.generation import Controls, Generation
from avgen.app.inputs import GenerationRequest
from avgen.app.model import load_model
from avgen.media import probe, read_media

PROMPT = "A red round face with glasses talks in a deep voice on a navy background."
OTHER = "A blue square face with sleepy eyes talks in a squeaky voice on a sand background."


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_model(None, untrained=True)


def start(model, tmp_path, seconds=1.5, prompt=PROMPT, controls=None, **config):
    request = GenerationRequest(prompt=prompt, seconds=seconds, mode="fast", seed=0, image=None)
    return Generation(model, request, AppConfig(untrained=True, **config), controls or Controls(), tmp_path / "run")


def test_untrained_model_says_so(model):
    assert not model.trained and model.source == "untrained tiny components"
    assert set(model.pipelines) == {"rolling", "mutual"}


def test_compile_compiles_the_transformer_both_modes_share():
    from avgen.models.compilation import is_compiled

    compiled = load_model(None, untrained=True, compile=True)
    assert compiled.pipelines["rolling"].transformer is compiled.pipelines["mutual"].transformer
    assert is_compiled(compiled.pipelines["mutual"].transformer)


def test_a_folder_without_a_pipeline_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not a pipeline folder"):
        load_model(tmp_path)


def test_segments_tile_the_request_and_the_mp4_holds_it_all(model, tmp_path):
    generation = start(model, tmp_path, seconds=2.0, first_segment_seconds=0.25, segment_seconds=1.0)
    segments = list(generation.segments())
    # chunk 0 is one frame, later chunks four: 1 + 4 frames make the first segment, then 16 each
    assert [round(s.seconds * 16) for s in segments] == [5, 16, 11]
    for segment in segments:
        info = probe(segment.path)
        assert (info.video_codec, info.audio_codec) == ("h264", "flac")
        media = read_media(segment.path)
        # sample-exact audio: Gradio re-encodes it as one stream, with no gap at segment joins
        assert media.audio.shape[1] == len(media.frames) * 1000 == round(segment.seconds * 16000)
    assert generation.progress.seconds == 2.0 and generation.progress.first_segment_wall_seconds is not None
    media = read_media(generation.save_mp4(tmp_path / "out.mp4"))
    assert media.frames.shape == (32, 64, 64, 3)
    assert abs(media.audio.shape[1] - 32000) <= 1024  # AAC frames are 1024 samples


def test_stop_ends_the_stream_within_one_chunk(model, tmp_path):
    controls = Controls()
    generation = start(model, tmp_path, seconds=None, controls=controls, max_seconds=60)
    segments = generation.segments()
    next(segments)
    controls.stop.set()
    chunks_at_stop = generation.progress.chunks
    list(segments)
    assert generation.progress.stopped
    assert generation.progress.chunks <= chunks_at_stop + 1
    info = probe(generation.save_mp4(tmp_path / "partial.mp4"))
    assert abs(info.duration - generation.progress.seconds) < 0.1


def test_prompt_edit_applies_from_the_next_chunk(model, tmp_path):
    def frames(controls):
        generation = start(model, tmp_path, seconds=1.0, controls=controls)
        list(generation.segments())
        return generation, generation.recorded()[0]

    _, plain = frames(Controls())
    edited_controls = Controls()
    edited_controls.edit_prompt(OTHER)  # read after chunk 0, before chunk 1 is made
    edited, steered = frames(edited_controls)
    assert edited.progress.prompt == OTHER and edited.progress.prompt_note == ""
    assert np.array_equal(steered[:1], plain[:1])
    assert not np.array_equal(steered[1:], plain[1:])


def test_unreadable_edit_keeps_the_prompt_and_says_why(model, tmp_path):
    controls = Controls()
    controls.edit_prompt("A red round face with wi")
    generation = start(model, tmp_path, seconds=0.5, controls=controls)
    list(generation.segments())
    assert generation.progress.prompt == PROMPT
    assert "edit not applied yet: unknown words in prompt: wi" in generation.progress.prompt_note


def test_unknown_words_fail_before_any_work(model, tmp_path):
    with pytest.raises(ValueError, match="unknown words in prompt: dragon"):
        start(model, tmp_path, prompt="A purple dragon")


def test_a_video_only_model_streams_segments_without_sound(tmp_path):
    from avgen.app.model import AppModel
    from avgen.codecs.presets import tiny_video_codec
    from avgen.models import CausalAVTransformer
    from avgen.pipelines import MutualForcingPipeline, RollingForcingPipeline
    from avgen.scheduler import FlowMatchShortcutScheduler
    from avgen.text import WorldTextEncoder

    torch.manual_seed(0)
    transformer = CausalAVTransformer.from_preset("tiny", modalities=("video",), step_conditioning=False).eval()
    rolling = RollingForcingPipeline(transformer=transformer, vae=tiny_video_codec().eval(), text_encoder=WorldTextEncoder().eval(),
                                     scheduler=FlowMatchShortcutScheduler(sampler="renoise"))  # fmt: skip
    rolling.set_progress_bar_config(disable=True)
    model = AppModel({"rolling": rolling, "mutual": MutualForcingPipeline(**rolling.components)}, "video only", False)
    generation = start(model, tmp_path, seconds=1.0, first_segment_seconds=0.25, segment_seconds=1.0)
    segments = list(generation.segments())
    assert segments and all((probe(s.path).video_codec, probe(s.path).audio_codec) == ("h264", None) for s in segments)
    info = probe(generation.save_mp4(tmp_path / "out.mp4"))
    assert info.audio_codec is None and abs(info.duration - 1.0) < 0.1


def test_the_status_says_what_of_the_prompt_the_model_cannot_show(model, tmp_path):
    from avgen.app.ui import status_text

    generation = start(model, tmp_path, seconds=0.25, prompt=PROMPT.replace("navy", "purple"))
    list(generation.segments())
    assert generation.progress.request_note.startswith("this model cannot show purple background")
    assert "ℹ️ this model cannot show purple background" in status_text(generation.progress, "done", generation.request)
    assert start(model, tmp_path / "other", seconds=0.25).progress.request_note == ""


def dub_request(video_path) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, seconds=None, mode="fast", seed=0, image=None, video=str(video_path))


@pytest.fixture
def silent_clip(tmp_path):
    from avgen.media import write_mp4
    from avgen.world.clip import sample_clip

    chunk = sample_clip(4, split="held-out").render(0, 24)
    write_mp4(tmp_path / "silent.mp4", chunk.frames, None, 16, 16000)
    return tmp_path / "silent.mp4", chunk.frames


def test_a_video_to_voice_is_refused_by_a_model_not_trained_for_it(tmp_path, silent_clip):
    speaking_only = load_model(None, untrained=True)
    speaking_only.pipelines["rolling"].transformer.register_to_config(video_conditioning=False)
    with pytest.raises(ValueError, match="not trained to voice a given video"):
        Generation(speaking_only, dub_request(silent_clip[0]), AppConfig(untrained=True), Controls(), tmp_path / "run")


def test_a_video_to_voice_streams_its_own_frames_with_generated_sound(tmp_path, silent_clip):
    from avgen.app.ui import status_text

    generation = Generation(load_model(None, untrained=True), dub_request(silent_clip[0]), AppConfig(untrained=True), Controls(), tmp_path / "run")
    segments = list(generation.segments())
    assert segments and all(probe(s.path).audio_codec == "flac" for s in segments)  # the segments' lossless sound
    assert "voicing the given video" in status_text(generation.progress, "Done", generation.request)
    media = read_media(generation.save_mp4(tmp_path / "dubbed.mp4"))
    assert len(media.frames) == len(silent_clip[1]) and media.audio.shape[-1] == len(silent_clip[1]) * 1000
    assert np.abs(media.frames.astype(int) - silent_clip[1].astype(int)).mean() < 8  # the given picture (through H.264 twice)
