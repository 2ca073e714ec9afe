import pytest
import torch

from avgen.codecs import AudioCodec, VideoCodec
from avgen.codecs.losses import envelope_decorrelation, multi_resolution_stft_distance, psnr
from avgen.codecs.presets import tiny_audio_codec, tiny_video_codec


@pytest.fixture(scope="module")
def video_codec():
    torch.manual_seed(0)
    return tiny_video_codec().eval()


@pytest.fixture(scope="module")
def audio_codec():
    torch.manual_seed(0)
    return tiny_audio_codec().eval()


def test_video_streaming_equals_whole(video_codec):
    video = torch.rand(2, 3, 13, 64, 64) * 2 - 1
    latents = video_codec.encode_latents(video)
    assert latents.shape == (2, 8, 4, 8, 8)
    stream = video_codec.stream()
    parts = [stream.encode(video[:, :, a:b]) for a, b in ((0, 2), (2, 3), (3, 9), (9, 13))]
    assert [p.shape[2] for p in parts] == [1, 0, 2, 1]  # frames wait until they complete a latent frame
    assert (torch.cat(parts, 2) - latents).abs().max() <= 1e-4

    whole = video_codec.decode_latents(latents)
    assert whole.shape == video.shape
    stream = video_codec.stream()
    chunks = [stream.decode(latents[:, :, a:b]) for a, b in ((0, 1), (1, 3), (3, 4))]
    assert [c.shape[2] for c in chunks] == [1, 8, 4]  # the first latent frame is one pixel frame
    assert (torch.cat(chunks, 2) - whole).abs().max() <= 1e-4


def test_audio_streaming_equals_whole(audio_codec):
    audio = torch.rand(2, 1, 16_000) * 2 - 1
    latents = audio_codec.encode_latents(audio)
    assert latents.shape == (2, 8, 32)  # 32 latents per second, 8 per 4-frame video latent at 16 fps
    stream = audio_codec.stream()
    parts = [stream.encode(audio[..., a:b]) for a, b in ((0, 700), (700, 1000), (1000, 5500), (5500, 16_000))]
    assert [p.shape[-1] for p in parts] == [1, 1, 9, 21]
    assert (torch.cat(parts, -1) - latents).abs().max() <= 1e-4

    whole = audio_codec.decode_latents(latents)
    assert whole.shape == audio.shape
    stream = audio_codec.stream()
    chunks = [stream.decode(latents[..., a:b]) for a, b in ((0, 1), (1, 9), (9, 20), (20, 32))]
    assert (torch.cat(chunks, -1) - whole).abs().max() <= 1e-4


def test_audio_codec_is_causal(audio_codec):
    latents = torch.randn(1, 8, 20)
    changed = latents.clone()
    changed[..., 10] += 1.0
    difference = (audio_codec.decode_latents(changed) - audio_codec.decode_latents(latents)).abs()[0, 0]
    assert difference[: 10 * 500].max() == 0 and difference[10 * 500 :].max() > 0


def test_real_wan_vae_folders_load_into_the_video_codec(tmp_path):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    wan = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[True],
                           latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()  # fmt: skip
    wan.save_pretrained(tmp_path)
    codec = VideoCodec.from_pretrained(tmp_path).eval()
    assert codec.state_dict().keys() == wan.state_dict().keys()
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        reference = wan.decode(wan.encode(video).latent_dist.mode()).sample
    assert (codec.decode_latents(codec.encode_latents(video)) - reference).abs().max() <= 1e-5


def test_latent_normalisation_round_trips(tmp_path, audio_codec):
    audio = torch.rand(1, 1, 4000) * 2 - 1
    raw = audio_codec.encode_latents(audio)
    audio_codec.save_pretrained(tmp_path)
    normalised = AudioCodec.from_pretrained(tmp_path, latents_mean=[1.0] * 8, latents_std=[2.0] * 8).eval()
    assert torch.allclose(normalised.encode_latents(audio), (raw - 1.0) / 2.0, atol=1e-5)
    assert torch.allclose(normalised.decode_latents((raw - 1.0) / 2.0), audio_codec.decode_latents(raw), atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda v, a: v.decode_latents(torch.zeros(1, 5, 2, 8, 8)), r"video latents must be \(B, 8, F, h, w\)"),
        (lambda v, a: v.encode_latents(torch.zeros(1, 3, 4, 64, 64)), "1 \\+ 4k frames"),
        (lambda v, a: v.encode_latents(torch.zeros(1, 3, 5, 60, 64)), "multiples of 8"),
        (lambda v, a: a.decode_latents(torch.zeros(1, 3, 4)), r"audio latents must be \(B, 8, T\)"),
        (lambda v, a: a.encode_latents(torch.zeros(1, 1, 1234)), "multiple of 500 samples"),
        (lambda v, a: a.encode_latents(torch.zeros(1, 2, 1000)), r"audio must be \(B, 1, S\)"),
    ],
)
def test_bad_shapes_name_the_expected_one(video_codec, audio_codec, call, message):
    with pytest.raises(ValueError, match=message):
        call(video_codec, audio_codec)


def test_distances():
    x = torch.rand(2, 1, 4000) * 2 - 1
    assert float(multi_resolution_stft_distance(x, x)) == 0.0
    assert float(multi_resolution_stft_distance(x, x + 0.1 * torch.randn_like(x))) > 0.0
    voice = torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 440) * (torch.arange(16000) // 2000 % 2)  # 440 Hz, on/off
    voice = voice.reshape(1, 1, -1)
    assert float(envelope_decorrelation(voice, voice, 16000, 500)) == pytest.approx(0.0, abs=1e-6)
    assert float(envelope_decorrelation(0.3 * voice, voice, 16000, 500)) == pytest.approx(0.0, abs=1e-6)  # gain-free
    assert float(envelope_decorrelation(voice.roll(1000, -1), voice, 16000, 500)) > 0.5  # late by a frame
    v = torch.zeros(1, 3, 1, 4, 4)
    assert float(psnr(v + 0.02, v)[0]) == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.0004)).item(), rel=1e-4)


def test_a_changed_audio_weight_is_never_served_from_the_cache(audio_codec):
    latents = torch.randn(1, 8, 4)
    conv = audio_codec.decoder.conv1
    with torch.no_grad():
        before = audio_codec.decode_latents(latents)
        conv.weight_g.mul_(0.5)
        try:
            after = audio_codec.decode_latents(latents)
            assert torch.equal(conv.weight, torch._weight_norm(conv.weight_v, conv.weight_g, 0))
        finally:
            conv.weight_g.mul_(2.0)
        assert not torch.equal(before, after)
        assert torch.equal(audio_codec.decode_latents(latents), before)
