"""Guiding by the prompt (`Denoiser.guidance_scale`), and only above a noise level (`guidance_from_level`)."""

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
