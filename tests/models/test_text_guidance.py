"""Guiding by the prompt (`Denoiser.guidance_scale`), and only above a noise level (`guidance_from_level`)
or, below it, only where it guides most (`guidance_area_below_level`)."""

import pytest

import torch

from avgen.rollout import Denoiser


def velocities(model, text, first_chunk, window, levels, **guidance):
    """One denoiser's velocities for `window`, after the same clean chunk went into its cache."""
    denoiser = Denoiser(model, text, negative_prompt_embeds=torch.zeros_like(text), **guidance)
    with torch.no_grad():
        denoiser.refresh(*first_chunk)
        return denoiser.velocity(*window, (levels, levels), (0.25 * torch.ones_like(levels),) * 2)


def test_guidance_from_a_level_mixes_only_the_chunks_at_or_above_it(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    first = (video[:, :, :2], audio[..., :8])
    window = (video[:, :, 2:], audio[..., 8:])  # two chunks: (B, C, 4, H, W) and (B, C, 16)
    levels = torch.tensor([[1.0, 0.5], [0.5, 1.0]])  # each sample has one chunk at pure noise
    plain = velocities(micro, text, first, window, levels)
    everywhere = velocities(micro, text, first, window, levels, guidance_scale=3.0)
    from_top = velocities(micro, text, first, window, levels, guidance_scale=3.0, guidance_from_level=1.0)
    for kind, (frames_per_chunk, at) in enumerate(((2, lambda x, s: x[:, :, s]), (8, lambda x, s: x[..., s]))):
        for b, chunk_levels in enumerate(levels.tolist()):
            for c, level in enumerate(chunk_levels):
                frames = slice(c * frames_per_chunk, (c + 1) * frames_per_chunk)
                expected = everywhere if level >= 1.0 else plain
                torch.testing.assert_close(at(from_top[kind][b : b + 1], frames), at(expected[kind][b : b + 1], frames))
        assert (everywhere[kind] - plain[kind]).abs().max() > 1e-3  # the prompt does move both: not vacuous


def test_below_the_level_an_area_guides_the_picture_only_where_the_guidance_is_largest(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    first = (video[:, :, :2], audio[..., :8])
    window = (video[:, :, 2:], audio[..., 8:])  # two chunks of 2 latent frames each
    levels = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    plain = velocities(micro, text, first, window, levels)
    everywhere = velocities(micro, text, first, window, levels, guidance_scale=3.0)
    from_top = velocities(micro, text, first, window, levels, guidance_scale=3.0, guidance_from_level=1.0)
    kept = velocities(micro, text, first, window, levels, guidance_scale=3.0, guidance_from_level=1.0, guidance_area_below_level=0.25)
    torch.testing.assert_close(kept[1], from_top[1])  # the voice: guided at the level only, as before
    push = everywhere[0] - plain[0]  # (B, C, F, h, w): (3 - 1) x (cond - uncond)
    positions = push.shape[-2] * push.shape[-1]
    for b, chunk_levels in enumerate(levels.tolist()):
        for c, level in enumerate(chunk_levels):
            frames = slice(2 * c, 2 * c + 2)
            got = kept[0][b : b + 1, :, frames]
            if level >= 1.0:
                torch.testing.assert_close(got, from_top[0][b : b + 1, :, frames])
                continue
            chunk_push = push[b : b + 1, :, frames]
            size = chunk_push.abs().amax(1).flatten(-2)  # (1, 2, h * w)
            largest = (size >= size.topk(round(0.25 * positions), dim=-1).values[..., -1:]).view_as(chunk_push[:, 0])
            unguided = from_top[0][b : b + 1, :, frames]  # the conditional rows of the same batched forward
            torch.testing.assert_close(got, unguided + chunk_push * largest.unsqueeze(1))
            moved = (got - unguided).abs().amax(1).flatten(-2) > 0
            assert (moved.sum(-1) == round(0.25 * positions)).all()  # a quarter of each frame's positions


@pytest.mark.parametrize("area", [-0.5, 1.5])
def test_an_area_below_the_level_outside_a_share_says_what_to_do(micro, make_latents, area):
    _, _, text = make_latents(micro, 1)
    with pytest.raises(ValueError, match=r"guidance_area_below_level is a share of each frame's positions, in \[0, 1\]"):
        Denoiser(micro, text, negative_prompt_embeds=torch.zeros_like(text), guidance_scale=2.0, guidance_area_below_level=area)


def test_guidance_at_every_level_is_the_published_rule(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    first = (video[:, :, :2], audio[..., :8])
    window = (video[:, :, 2:], audio[..., 8:])
    levels = torch.tensor([[0.75, 0.25]] * 2)
    cond = velocities(micro, text, first, window, levels)
    uncond = velocities(micro, torch.zeros_like(text), first, window, levels)
    guided = velocities(micro, text, first, window, levels, guidance_scale=2.5)
    for c, u, g in zip(cond, uncond, guided):
        torch.testing.assert_close(g, u + 2.5 * (c - u))


def test_both_branches_run_in_one_forward(micro, make_latents, monkeypatch):
    video, audio, text = make_latents(micro, 3)
    calls = []
    forward_chunks = micro.forward_chunks
    monkeypatch.setattr(micro, "forward_chunks", lambda *args, **kwargs: calls.append(args[1].shape[0]) or forward_chunks(*args, **kwargs))
    velocities(micro, text, (video[:, :, :2], audio[..., :8]), (video[:, :, 2:], audio[..., 8:]), torch.ones(2, 2), guidance_scale=2.0)
    assert calls == [4, 4]  # the refresh and the window, each over the rows (cond; uncond) of a batch of 2


def test_a_recached_prompt_change_leaves_the_conditional_rows_as_unguided(micro, make_latents):
    video, audio, text = make_latents(micro, 4)
    new = make_latents(micro, 4, seed=1)[2]

    def recached(**guidance):
        denoiser = Denoiser(micro, text, negative_prompt_embeds=torch.zeros_like(text), recache=True, **guidance)
        with torch.no_grad():
            for c in range(3):
                denoiser.refresh(video[:, :, 2 * c : 2 * c + 2], audio[..., 8 * c : 8 * c + 8])
            denoiser.set_prompt(new)
            levels = torch.full((2, 1), 0.5)
            out = micro.forward_chunks(denoiser.conditional_cache, video[:, :, 6:], audio[..., 24:], levels, levels, encoder_hidden_states=new)
        return denoiser.conditional_cache.read(0, "video")[0], out.video

    for got, want in zip(recached(guidance_scale=2.0), recached()):
        torch.testing.assert_close(got, want)
