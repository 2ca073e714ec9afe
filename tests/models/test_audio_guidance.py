"""Guiding the picture by the voice (`Denoiser.audio_guidance_scale`, `audio_guidance_area`), against the rule worked by hand."""

import pytest
import torch

from avgen.rollout import Denoiser


def denoisers(model, text, scales, first_chunk, area=1.0):
    """One denoiser per scale, each with the same clean chunk already in its cache."""
    made = [
        Denoiser(model, text, audio_guidance_scale=scale, audio_guidance_area=area, window_attention="fusion-causal") for scale in scales
    ]
    with torch.no_grad():
        for denoiser in made:
            denoiser.refresh(*first_chunk)
    return made


def test_the_picture_is_pushed_by_what_hearing_the_voice_changes_in_it_less_its_mean(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    first = (video[:, :, :2], audio[..., :8])
    window = (video[:, :, 2:], audio[..., 8:])  # two chunks: (B, C, 4, H, W) and (B, C, 16)
    levels = torch.tensor([[0.75, 0.5]] * 2)
    plain, guided = denoisers(micro, text, (1.0, 2.5), first)
    with torch.no_grad():
        v_plain, a_plain = plain.velocity(*window, (levels, levels), (0.25 * torch.ones_like(levels),) * 2)
        v_guided, a_guided = guided.velocity(*window, (levels, levels), (0.25 * torch.ones_like(levels),) * 2)
        alone = micro.forward_chunks(
            plain.cache, window[0], None, levels, None, 0.25 * torch.ones_like(levels), None,
            encoder_hidden_states=text, joint=True, joint_fusion=False,
        ).video  # fmt: skip
    heard = v_plain - alone
    expected = v_plain + 1.5 * (heard - heard.mean(dim=(-2, -1), keepdim=True))
    torch.testing.assert_close(v_guided, expected)
    assert heard.abs().max() > 1e-3  # the voice does move this picture: the rule above is not vacuous
    torch.testing.assert_close(v_guided.mean(dim=(-2, -1)), v_plain.mean(dim=(-2, -1)))  # no colour shift pushed
    assert torch.equal(a_guided, a_plain)  # the voice itself is not guided


def test_an_area_keeps_the_push_to_the_positions_where_hearing_the_voice_changes_the_picture_most(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    first = (video[:, :, :2], audio[..., :8])
    window = (video[:, :, 2:], audio[..., 8:])
    levels = torch.tensor([[0.75, 0.5]] * 2)
    steps = (0.25 * torch.ones_like(levels),) * 2
    plain, everywhere = denoisers(micro, text, (1.0, 2.5), first)
    (kept,) = denoisers(micro, text, (2.5,), first, area=0.25)
    with torch.no_grad():
        v_plain, v_everywhere, v_kept = (d.velocity(*window, (levels, levels), steps)[0] for d in (plain, everywhere, kept))
    push = v_everywhere - v_plain  # (B, C, F, h, w): 1.5 x what hearing the voice changes, less its mean
    positions = push.shape[-2] * push.shape[-1]
    size = push.abs().amax(1).flatten(-2)  # (B, F, h * w)
    largest = size >= size.topk(round(0.25 * positions), dim=-1).values[..., -1:]
    torch.testing.assert_close(v_kept, v_plain + push * largest.view_as(push[:, 0]).unsqueeze(1))
    moved = (v_kept - v_plain).abs().amax(1).flatten(-2) > 0  # (B, F, h * w)
    assert (moved.sum(-1) == round(0.25 * positions)).all()  # a quarter of each frame's positions, no more


@pytest.mark.parametrize("area", [0.0, 1.5])
def test_an_area_outside_a_share_says_what_to_do(micro, make_latents, area):
    _, _, text = make_latents(micro, 1)
    with pytest.raises(ValueError, match=r"audio_guidance_area is a share of each frame's positions, in \(0, 1\]"):
        Denoiser(micro, text, audio_guidance_scale=2.0, audio_guidance_area=area)


def test_a_given_picture_is_not_guided_and_costs_no_forward(micro, make_latents, monkeypatch):
    video, audio, text = make_latents(micro, 2)
    first = (video[:, :, :2], audio[..., :8])
    plain, guided = denoisers(micro, text, (1.0, 2.5), first)
    calls = []
    forward_chunks = micro.forward_chunks
    monkeypatch.setattr(micro, "forward_chunks", lambda *args, **kwargs: calls.append(1) or forward_chunks(*args, **kwargs))
    clean, noisy = torch.zeros(2, 1), torch.full((2, 1), 0.5)
    with torch.no_grad():
        expected = plain.velocity(video[:, :, 2:], audio[..., 8:], (clean, noisy), (clean, 0.25 + clean))
        calls.clear()
        got = guided.velocity(video[:, :, 2:], audio[..., 8:], (clean, noisy), (clean, 0.25 + clean), given=("video",))
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("modalities", [("video",), ("audio",)])
def test_one_modality_alone_is_left_unguided(micro_config, make_latents, modalities):
    from avgen.models import CausalAVTransformer

    torch.manual_seed(0)
    model = CausalAVTransformer(**{**micro_config, "modalities": modalities}).eval()
    video, audio, text = make_latents(model, 1)
    video, audio = (video if "video" in modalities else None), (audio if "audio" in modalities else None)
    levels = torch.full((2, 1), 0.5)
    plain, guided = (Denoiser(model, text, audio_guidance_scale=scale) for scale in (1.0, 2.5))
    with torch.no_grad():
        got, expected = (d.velocity(video, audio, (levels, levels), (levels, levels)) for d in (guided, plain))
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(got, expected))


def test_dubbing_through_the_rollout_runs_no_guidance_forward(micro, make_latents, monkeypatch):
    from avgen.rollout import rollout

    video, audio, text = make_latents(micro, 3)
    picture = {"video": lambda i: video[:, :, 2 * i : 2 * i + 2]}  # each chunk's given clean frames
    calls = []
    forward_chunks = micro.forward_chunks
    monkeypatch.setattr(micro, "forward_chunks", lambda *args, **kwargs: calls.append(1) or forward_chunks(*args, **kwargs))

    def voice(scale):
        calls.clear()
        denoiser = Denoiser(micro, text, audio_guidance_scale=scale)
        noise = lambda i: (torch.zeros_like(video[:, :, :2]), audio[..., 8 * i : 8 * i + 8])  # noqa: E731
        with torch.no_grad():
            chunks = rollout(denoiser, noise, torch.tensor([1.0, 0.5, 0.0]), 2, True, num_chunks=3, given=picture)
            return torch.cat([chunk.audio for chunk in chunks], dim=-1), len(calls)

    (guided, guided_calls), (plain, plain_calls) = voice(2.5), voice(1.0)
    assert torch.equal(guided, plain) and guided_calls == plain_calls
