import threading

import numpy as np
import pytest
import torch

from avgen import CausalAVTransformer, FlowMatchShortcutScheduler, MutualForcingPipeline, RollingForcingPipeline


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_output_shapes_match_the_seconds_asked_for(rolling, prompt):
    out = rolling(prompt, seconds=1.5, generator=seeded())
    assert out.frames.shape == (1, 24, 64, 64, 3) and out.frames.dtype == np.uint8
    assert out.audio.shape == (1, 1, 24_000) and out.audio.dtype == np.float32
    assert (out.fps, out.sample_rate) == (16, 16000)
    pt = rolling(prompt, seconds=1.5, generator=seeded(), output_type="pt")
    assert pt.frames.shape == (1, 24, 3, 64, 64) and 0.0 <= float(pt.frames.min()) <= float(pt.frames.max()) <= 1.0
    latent = rolling(prompt, seconds=1.5, generator=seeded(), output_type="latent")
    assert latent.frames.shape == (1, 8, 7, 8, 8) and latent.audio.shape == (1, 8, 56)


def test_same_seed_same_output_other_seed_other_output(rolling, prompt):
    a = rolling(prompt, seconds=1.0, generator=seeded(0))
    b = rolling(prompt, seconds=1.0, generator=seeded(0))
    c = rolling(prompt, seconds=1.0, generator=seeded(1))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)


def test_batch_of_two_equals_two_single_runs(rolling, prompt):
    other = "A blue square face with dot eyes talks in a squeaky voice on a mint background."
    batch = rolling([prompt, other], seconds=1.0, generator=[seeded(3), seeded(4)])
    first = rolling(prompt, seconds=1.0, generator=seeded(3))
    second = rolling(other, seconds=1.0, generator=seeded(4))
    assert np.abs(batch.audio[0] - first.audio[0]).max() <= 1e-3 and np.abs(batch.audio[1] - second.audio[0]).max() <= 1e-3
    assert np.abs(batch.frames[0].astype(int) - first.frames[0]).max() <= 1
    assert np.abs(batch.frames[1].astype(int) - second.frames[0]).max() <= 1


def test_stream_chunks_concatenate_to_the_call(rolling, prompt):
    whole = rolling(prompt, seconds=2.0, generator=seeded())
    chunks = list(rolling.stream(prompt, seconds=2.0, generator=seeded()))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.frames.shape[1] for c in chunks[:3]] == [1, 4, 4]
    assert chunks[1].start_seconds == pytest.approx(1 / 16)
    assert np.array_equal(np.concatenate([c.frames for c in chunks], 1), whole.frames)
    assert np.array_equal(np.concatenate([c.audio for c in chunks], -1), whole.audio)
    for c in chunks:  # every chunk carries exactly the audio of its frames
        assert c.audio.shape[-1] == c.frames.shape[1] * 1000


def test_stream_without_length_goes_on_until_stopped(rolling, prompt):
    stream = rolling.stream(prompt, generator=seeded())
    chunks = [next(stream) for _ in range(12)]
    stream.close()
    assert [c.index for c in chunks] == list(range(12))


def test_window_of_one_is_chunkwise_few_step_generation(components, prompt):
    rolling = RollingForcingPipeline(**components)
    mutual = MutualForcingPipeline(**components)
    for pipe in (rolling, mutual):
        pipe.set_progress_bar_config(disable=True)
    a = rolling(prompt, seconds=1.0, num_inference_steps=4, window=1, generator=seeded())
    b = mutual(prompt, seconds=1.0, num_inference_steps=4, generator=seeded())
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    joint = rolling(prompt, seconds=1.0, num_inference_steps=4, generator=seeded())
    assert not np.array_equal(joint.audio, a.audio)  # the default window (4 chunks) differs


def test_a_causal_window_reads_each_chunk_against_the_ones_before_it_only(components, prompt, tmp_path):
    """window_attention "causal": chunk 0 comes out the same whatever noise the chunks after it
    start from; in the joint window (the default) it reads them and changes."""
    latents = torch.randn((1, 8, 4, 8, 8), generator=seeded(5))
    other = latents.clone()
    other[:, :, 1:] = torch.randn((1, 8, 3, 8, 8), generator=seeded(6))
    for attention in ("joint", "causal"):
        pipe = RollingForcingPipeline(**components, window_attention=attention)
        pipe.set_progress_bar_config(disable=True)
        first, second = (
            pipe(prompt, latents=start, generator=seeded(), output_type="latent") for start in (latents, other)
        )  # fmt: skip
        same = torch.equal(first.frames[:, :, 0], second.frames[:, :, 0]) and torch.equal(first.audio[..., :8], second.audio[..., :8])
        assert same == (attention == "causal"), attention
    pipe.save_pretrained(tmp_path)
    assert RollingForcingPipeline.from_pretrained(tmp_path).config.window_attention == "causal"
    with pytest.raises(ValueError, match="window_attention must be one of joint, fusion-causal, causal"):
        RollingForcingPipeline(**components, window_attention="sideways")(prompt, seconds=0.5)


@pytest.mark.parametrize("setting", ["guidance_scale", "audio_guidance_scale"])
def test_guidance_is_the_folders_default_and_a_call_overrides_it(components, prompt, tmp_path, setting):
    guided = RollingForcingPipeline(**components, **{setting: 2.0})
    plain = RollingForcingPipeline(**components)
    for pipe in (guided, plain):
        pipe.set_progress_bar_config(disable=True)
    by_folder = guided(prompt, seconds=1.0, generator=seeded())
    turned_off = guided(prompt, seconds=1.0, generator=seeded(), **{setting: 1.0})
    unguided = plain(prompt, seconds=1.0, generator=seeded())
    by_call = plain(prompt, seconds=1.0, generator=seeded(), **{setting: 2.0})
    assert np.array_equal(turned_off.frames, unguided.frames) and np.array_equal(turned_off.audio, unguided.audio)
    assert np.array_equal(by_folder.frames, by_call.frames) and not np.array_equal(by_folder.frames, unguided.frames)
    guided.save_pretrained(tmp_path)
    assert getattr(RollingForcingPipeline.from_pretrained(tmp_path).config, setting) == 2.0


def test_audio_guidance_on_a_video_only_model_says_what_to_do(prompt):
    from avgen.codecs.presets import tiny_video_codec
    from avgen.text import WorldTextEncoder

    transformer = CausalAVTransformer.from_preset("tiny", modalities=("video",), step_conditioning=False).eval()
    pipe = RollingForcingPipeline(transformer=transformer, vae=tiny_video_codec().eval(), text_encoder=WorldTextEncoder().eval(),
                                  scheduler=FlowMatchShortcutScheduler())  # fmt: skip
    with pytest.raises(ValueError, match="audio_guidance_scale=2.0 needs a model with an audio tower; this one is video-only: use 1"):
        pipe(prompt, seconds=0.5, audio_guidance_scale=2.0)


def test_guidance_from_a_level_guides_the_same_noise_at_any_step_count(components, prompt):
    """From level 0.8, 4 steps (levels 1, 0.75, ...) are guided at their first step only, as from
    level 1; 8 steps (1, 0.875, ...) at their first two, where from level 1 guides one."""
    outputs = {}
    for level in (1.0, 0.8):
        pipe = MutualForcingPipeline(**components, guidance_scale=3.0, guidance_from_level=level)
        pipe.set_progress_bar_config(disable=True)
        outputs[level] = [pipe(prompt, seconds=0.5, num_inference_steps=steps, generator=seeded()) for steps in (4, 8)]
    (top_4, top_8), (from_08_4, from_08_8) = outputs[1.0], outputs[0.8]
    assert np.array_equal(top_4.frames, from_08_4.frames) and np.array_equal(top_4.audio, from_08_4.audio)
    assert not np.array_equal(top_8.frames, from_08_8.frames)


def test_multi_step_mode_with_guidance_runs(mutual, prompt):
    out = mutual(prompt, seconds=0.5, num_inference_steps=12, guidance_scale=3.0, generator=seeded())
    assert out.frames.shape[1] == 8 and np.isfinite(out.audio).all()


def test_callback_sees_every_forward(rolling, prompt):
    seen = []
    rolling(prompt, seconds=1.0, num_inference_steps=4, generator=seeded(),
            callback_on_step_end=lambda pipe, tick, levels, kwargs: seen.append((tick, len(kwargs["chunks"]))))  # fmt: skip
    # 5 chunks, 4 levels each, window 4: warm-up, steady state and flush take 5 + 3 forwards.
    assert [tick for tick, _ in seen] == list(range(8))
    assert [n for _, n in seen] == [1, 2, 3, 4, 4, 3, 2, 1]


def test_prompt_change_takes_effect_at_the_next_chunk(rolling, prompt):
    other = "A green oval face with googly eyes talks in a bright voice on a sand background."
    plain = list(rolling.stream(prompt, seconds=2.0, generator=seeded()))
    stream = rolling.stream(prompt, seconds=2.0, generator=seeded())
    changed = [next(stream) for _ in range(3)]
    stream.set_prompt(other)
    changed += list(stream)
    for before, after in zip(plain[:3], changed[:3]):
        assert np.array_equal(before.audio, after.audio)
    assert not np.array_equal(plain[-1].audio, changed[-1].audio)


def decoding_ahead(pipe):
    pipe.enable_decode_ahead()
    return pipe


def test_decoding_ahead_gives_the_same_chunks(rolling, prompt):
    plain = list(rolling.stream(prompt, seconds=1.3, generator=seeded()))
    ahead = list(decoding_ahead(rolling).stream(prompt, seconds=1.3, generator=seeded()))
    assert [(c.index, c.start_seconds, c.frames.shape) for c in ahead] == [(c.index, c.start_seconds, c.frames.shape) for c in plain]
    for a, b in zip(ahead, plain):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert not any(t.name.startswith("avgen-frames") for t in threading.enumerate())


def test_decoding_ahead_a_prompt_change_reaches_the_chunk_after_next(rolling, prompt):
    other = "A green oval face with googly eyes talks in a bright voice on a sand background."
    plain = list(rolling.stream(prompt, seconds=2.0, generator=seeded()))
    stream = decoding_ahead(rolling).stream(prompt, seconds=2.0, generator=seeded())
    changed = [next(stream) for _ in range(3)]
    assert stream.decoding_seconds > 0
    stream.set_prompt(other)
    changed += list(stream)
    for before, after in zip(plain[:4], changed[:4]):  # the fourth was denoised before the change
        assert np.array_equal(before.audio, after.audio)
    assert not np.array_equal(plain[-1].audio, changed[-1].audio)


def test_a_stream_closed_early_stops_its_decoding_thread(rolling, prompt):
    stream = decoding_ahead(rolling).stream(prompt, seconds=2.0, generator=seeded())
    next(stream), next(stream)
    stream.close()
    assert not any(t.name.startswith("avgen-frames") for t in threading.enumerate())


def test_decoding_ahead_refuses_model_offload(rolling, prompt, monkeypatch):
    monkeypatch.setattr(rolling.vae, "_hf_hook", object(), raising=False)
    with pytest.raises(ValueError, match="disable_decode_ahead"):
        decoding_ahead(rolling).stream(prompt, seconds=1.0)


def test_reference_image_starts_the_stream(rolling, prompt):
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = (215, 60, 55)
    chunks = list(rolling.stream(prompt, seconds=1.0, image=image, generator=seeded()))
    assert chunks[0].frames.shape[1] == 1 and chunks[0].index == 0
    encoded = rolling.vae.decode_latents(rolling.vae.encode_latents(torch.from_numpy(image).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1))
    expected = ((encoded[0, :, 0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(chunks[0].frames[0, 0], expected)  # the first chunk is the image itself, through the VAE


def test_save_and_load_round_trip(rolling, prompt, tmp_path):
    rolling.save_pretrained(tmp_path)
    assert (tmp_path / "model_index.json").is_file()
    reference = rolling(prompt, seconds=1.0, generator=seeded())
    assert isinstance(MutualForcingPipeline.from_pretrained(tmp_path).transformer, type(rolling.transformer))
    loaded = RollingForcingPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    again = loaded(prompt, seconds=1.0, generator=seeded())
    assert np.abs(again.frames.astype(int) - reference.frames).max() <= 1
    assert np.abs(again.audio - reference.audio).max() <= 1e-5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompt=""), "prompt must be a non-empty string"),
        (dict(seconds=0), "seconds must be > 0"),
        (dict(seconds=-3), "seconds must be > 0"),
        (dict(num_inference_steps=4, window=3), r"window \(3\) must divide num_inference_steps \(4\)"),
        (dict(output_type="gif"), "output_type must be one of np, pt, latent"),
        (dict(image=np.zeros((64, 64), np.uint8)), "RGB uint8 array"),
        (dict(audio=np.zeros(16000, np.float32)), "not trained to follow given audio"),
        (dict(prompt="a purple elephant"), "unknown words in prompt: elephant"),
    ],
)
def test_bad_input_is_explained(rolling, prompt, kwargs, message):
    kwargs = {"prompt": prompt, "seconds": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        rolling(**kwargs)


def test_an_image_of_another_size_is_fitted_to_the_frame(rolling, prompt, caplog):
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, 24:] = 255
    out = rolling(prompt, seconds=1.0, image=image, generator=seeded())
    assert "image is 48x32 pixels; resized and centre-cropped to the video's 64x64" in caplog.text
    assert out.frames.shape == (1, 16, 64, 64, 3)


def test_pil_image_mode_is_checked(rolling, prompt):
    from PIL import Image

    with pytest.raises(ValueError, match="image must be RGB, got mode 'RGBA'"):
        rolling(prompt, seconds=1.0, image=Image.new("RGBA", (64, 64)))


def test_given_audio_drives_a_model_trained_for_it(components, prompt):
    from avgen import CausalAVTransformer

    config = {key: value for key, value in components["transformer"].config.items() if not key.startswith("_")}
    transformer = CausalAVTransformer(**{**config, "audio_conditioning": True}).eval()
    transformer.load_state_dict(components["transformer"].state_dict())
    pipe = RollingForcingPipeline(**{**components, "transformer": transformer})
    pipe.set_progress_bar_config(disable=True)
    waveform = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16_000) / 16_000).astype(np.float32)
    out = pipe(prompt, seconds=1.0, audio=waveform, generator=seeded())
    # The audio latents stay as given, so the output is the given audio through the codec.
    lead_in = 3000
    latents = pipe.audio_codec.encode_latents(torch.nn.functional.pad(torch.from_numpy(waveform)[None, None], (lead_in, 0)))
    expected = pipe.audio_codec.decode_latents(latents)[..., lead_in:].numpy()
    assert np.abs(out.audio[0] - expected[0]).max() <= 1e-4


def trained_for(components, **flags):
    from avgen import CausalAVTransformer

    config = {key: value for key, value in components["transformer"].config.items() if not key.startswith("_")}
    transformer = CausalAVTransformer(**{**config, **flags}).eval()
    transformer.load_state_dict(components["transformer"].state_dict())
    pipe = RollingForcingPipeline(**{**components, "transformer": transformer})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_a_given_video_is_shown_as_it_is_and_voiced(components, prompt):
    pipe = trained_for(components, video_conditioning=True)
    frames = np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    out = pipe(prompt, video=frames, generator=seeded())  # the length is the video's
    assert np.array_equal(out.frames[0], frames) and out.audio.shape == (1, 1, 20_000)
    chunks = list(pipe.stream(prompt, video=frames, generator=seeded()))
    assert [c.frames.shape[1] for c in chunks] == [1, 4, 4, 4, 4, 3] and all(c.audio.shape[-1] == c.frames.shape[1] * 1000 for c in chunks)
    assert np.array_equal(np.concatenate([c.audio for c in chunks], -1), out.audio)
    other = pipe(prompt, video=frames, generator=seeded(1))
    assert not np.array_equal(other.audio, out.audio)  # the sound is generated, the picture given
    latent = next(pipe.stream(prompt, video=frames, generator=seeded(), output_type="latent"))
    assert isinstance(latent.frames, torch.Tensor) and latent.frames.shape[1:] == (8, 1, 8, 8)  # latents, not the given frames


def test_a_given_video_is_voiced_with_the_folders_dub_window(components, prompt):
    """dub_window sets the window of dubbing only; an explicit window still wins, and generation keeps its own."""
    pipe = trained_for(components, video_conditioning=True)
    pipe.register_to_config(dub_window=1)
    frames = np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    dubbed = pipe(prompt, video=frames, generator=seeded()).audio
    assert np.array_equal(dubbed, pipe(prompt, video=frames, window=1, generator=seeded()).audio)
    assert not np.array_equal(dubbed, pipe(prompt, video=frames, window=4, generator=seeded()).audio)
    made = pipe(prompt, seconds=1.0, generator=seeded()).audio
    assert np.array_equal(made, pipe(prompt, seconds=1.0, window=4, generator=seeded()).audio)
    assert not np.array_equal(made, pipe(prompt, seconds=1.0, window=1, generator=seeded()).audio)


def test_dubbing_is_refused_where_the_model_was_not_trained_for_it(rolling, components, prompt):
    frames = np.zeros((9, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="not trained to voice a given video"):
        rolling(prompt, video=frames)
    pipe = trained_for(components, video_conditioning=True, audio_conditioning=True)
    with pytest.raises(ValueError, match="give audio .* or video .*, not both"):
        pipe(prompt, video=frames, audio=np.zeros(16_000, np.float32))
    with pytest.raises(ValueError, match="shorter than asked for"):
        pipe(prompt, video=frames, seconds=2.0)


def test_pipeline_moves_to_another_dtype(components, prompt):
    import copy

    pipe = RollingForcingPipeline(**copy.deepcopy(components)).to(torch.float64)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt, seconds=0.25, generator=seeded())
    assert out.frames.shape == (1, 4, 64, 64, 3) and pipe.transformer.dtype == torch.float64


def test_warm_up_leaves_the_next_stream_as_it_would_be(rolling, prompt):
    plain = list(rolling.stream(prompt, seconds=1.0, generator=seeded()))
    assert rolling.warm_up() > 0
    again = list(rolling.stream(prompt, seconds=1.0, generator=seeded()))
    for a, b in zip(plain, again, strict=True):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
