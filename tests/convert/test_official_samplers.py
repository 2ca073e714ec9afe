"""Converted checkpoints sample exactly as the official samplers: the official-tiny fixture's outputs
reproduced through `avgen convert` and `RollingForcingPipeline.from_pretrained(folder)`."""

import numpy as np
import pytest
import torch

from avgen import RollingForcingPipeline
from avgen.convert.pipeline_folder import convert_checkpoint
from avgen.convert.recipes import recipe

TOLERANCE = 1e-4  # fp32 rounding: the official run and avgen differ by about 2e-6


def convert(fixture, base, out, name, **options):
    return convert_checkpoint(
        fixture / "tiny_self_forcing_format.pt", base, recipe(name), out, dtype="fp32", num_heads=2, text_length=32, **options
    )


@pytest.fixture(scope="module")
def converted(official_tiny, tiny_wan_base_diffusers, tmp_path_factory):
    """{recipe: folder} converted from the fixture's checkpoint with the diffusers-layout base."""
    root = tmp_path_factory.mktemp("converted")
    return {name: convert(official_tiny, tiny_wan_base_diffusers, root / name, name) for name in ("self-forcing", "rolling-forcing")}


def load(folder):
    pipe = RollingForcingPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def official(fixture, name):
    return torch.load(fixture / f"{name}.pt", weights_only=True)["latents"]  # (B, F, C, H, W)


def sample(pipe, fixture, frames: int, **settings):
    """The official call: the fixture's noise and text embeddings, re-noise draws from seed 1234."""
    inputs = torch.load(fixture / "inputs.pt", weights_only=True)
    out = pipe(
        prompt_embeds=inputs["prompt_embeds"],
        latents=inputs[f"noise_{frames}"].permute(0, 2, 1, 3, 4),  # official (B, F, C, H, W) -> (B, C, F, H, W)
        generator=torch.Generator().manual_seed(1234),
        output_type="latent",
        **settings,
    )
    return out.frames.permute(0, 2, 1, 3, 4)


@pytest.mark.parametrize(
    "name, output, frames, settings",
    [
        ("self-forcing", "sf_out_21_global", 21, {}),
        ("self-forcing", "sf_out_60_local21_sink0", 60, {"attention_chunks": 7}),
        ("rolling-forcing", "rf_out_21", 21, {}),
    ],
)
def test_the_official_outputs_are_reproduced(converted, official_tiny, name, output, frames, settings):
    pipe = load(converted[name])
    got = sample(pipe, official_tiny, frames, **settings)
    assert pipe.audio_codec is None and pipe.transformer.modalities == ("video",)
    assert (got - official(official_tiny, output)).abs().max() <= TOLERANCE


def test_the_generator_weights_do_not_reproduce_them(official_tiny, tiny_wan_base_diffusers, tmp_path):
    pipe = load(convert(official_tiny, tiny_wan_base_diffusers, tmp_path / "sf", "self-forcing", weights="generator"))
    assert (sample(pipe, official_tiny, 21) - official(official_tiny, "sf_out_21_global")).abs().max() > 1e-2


def test_the_original_layout_base_converts_to_the_same_folder(official_tiny, tiny_wan_base_original, tmp_path):
    pipe = load(convert(official_tiny, tiny_wan_base_original, tmp_path / "rf", "rolling-forcing"))
    assert (sample(pipe, official_tiny, 21) - official(official_tiny, "rf_out_21")).abs().max() <= TOLERANCE


def test_the_folder_carries_the_recipes_sampling_defaults(converted):
    pipe = load(converted["rolling-forcing"])
    assert pipe.scheduler.config.sampler == "renoise" and pipe.scheduler.default_steps == 5
    assert (pipe.config.height, pipe.config.width, pipe.config.num_frames, pipe.fps) == (480, 832, 81, 16)
    assert pipe.schedule(5, None) == (5, True)
    assert load(converted["self-forcing"]).schedule(4, None) == (1, True)


def test_a_video_only_model_decodes_frames_and_no_audio(converted):
    pipe = load(converted["rolling-forcing"])
    out = pipe(prompt="a red round face", num_frames=9, height=32, width=48, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 9, 32, 48, 3) and out.frames.dtype == np.uint8
    assert out.audio is None and out.sample_rate is None
    chunks = list(pipe.stream("a red round face", num_frames=33, height=32, width=48, generator=torch.Generator().manual_seed(0)))
    assert [c.frames.shape[1] for c in chunks] == [9, 12, 12] and all(c.audio is None for c in chunks)


def test_an_image_of_any_size_starts_the_video(converted, caplog):
    pipe = load(converted["self-forcing"])
    image = np.zeros((40, 70, 3), np.uint8)
    image[:, 35:] = 255

    def generate(seed):
        settings = dict(image=image, num_frames=21, height=32, width=48, generator=torch.Generator().manual_seed(seed))
        return pipe(prompt="a red round face", **settings).frames

    first, other = generate(0), generate(1)
    assert "resized and centre-cropped to the video's 48x32" in caplog.text
    assert first.shape == (1, 21, 32, 48, 3)
    # The first chunk (9 frames) is the image held still, whatever the noise; what follows is generated.
    assert np.array_equal(first[:, :9], other[:, :9]) and not np.array_equal(first[:, 9:], other[:, 9:])


def test_dtype_moves_and_model_offload_keep_the_video(converted, official_tiny):
    reference = sample(load(converted["rolling-forcing"]), official_tiny, 21)
    offloaded = load(converted["rolling-forcing"])
    offloaded.enable_model_cpu_offload(device="cpu")  # the hooks' path; on a GPU they move each model in turn
    assert (sample(offloaded, official_tiny, 21) - reference).abs().max() <= TOLERANCE
    half = load(converted["rolling-forcing"]).to(torch.bfloat16)
    got = sample(half, official_tiny, 21)
    assert got.dtype == torch.bfloat16 and (got.float() - reference).abs().mean() < 0.1


@pytest.mark.parametrize("name", ["causvid", "longlive", "causal-forcing", "causal-forcing-framewise"])
def test_every_recipe_converts_and_streams_past_its_cache_with_a_prompt_change(name, official_tiny, tiny_wan_base_diffusers, tmp_path):
    pipe = load(convert(official_tiny, tiny_wan_base_diffusers, tmp_path / name, name))
    inputs = torch.load(official_tiny / "inputs.pt", weights_only=True)
    embeds = inputs["prompt_embeds"]
    chunks = pipe.config.cache_chunks + pipe.config.sink_chunks + 2  # far enough that the ring has wrapped
    stream = pipe.stream(prompt_embeds=embeds, latents=torch.randn(1, 16, chunks * pipe.transformer.config.chunk_frames, 8, 8),
                         generator=torch.Generator().manual_seed(0), output_type="latent")  # fmt: skip
    made = []
    for chunk in stream:
        made.append(chunk.frames)
        if chunk.index == chunks // 2:
            stream.set_prompt(prompt_embeds=embeds.flip(1))
    assert len(made) == chunks and all(torch.isfinite(c).all() for c in made)
    assert pipe.config.recache_on_prompt_change == (name == "longlive")
