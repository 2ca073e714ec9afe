import pytest
import torch

from avgen.models import CausalAVTransformer, KVCache


def chunk(x: torch.Tensor, model, index: int, count: int = 1) -> torch.Tensor:
    """Latents of chunks [index, index + count) along time."""
    per_chunk = model.config.chunk_frames if x.ndim == 5 else model.config.chunk_frames * model.config.audio_latents_per_frame
    return x[:, :, index * per_chunk : (index + count) * per_chunk]


def incremental(model, video, audio, text, t_video, t_audio, num_chunks):
    """Chunks one by one against a cache that keeps them all; returns concatenated outputs."""
    cache = KVCache(sink=num_chunks, window=0)
    outputs = []
    for c in range(num_chunks):
        out = model.forward_chunks(
            cache,
            video=None if video is None else chunk(video, model, c),
            audio=None if audio is None else chunk(audio, model, c),
            timestep_video=None if video is None else t_video[:, c : c + 1],
            timestep_audio=None if audio is None else t_audio[:, c : c + 1],
            encoder_hidden_states=text,
            write=True,
        )
        outputs.append(out)
    cat = lambda name: None if getattr(outputs[0], name) is None else torch.cat([getattr(o, name) for o in outputs], 2)  # noqa: E731
    return cat("video"), cat("audio")


@pytest.mark.parametrize("modalities", ["video", "audio", "video+audio"])
def test_incremental_equals_block_causal_full_forward(micro, make_latents, modalities):
    N = 4
    video, audio, text = make_latents(micro, N)
    video = video if "video" in modalities else None
    audio = audio if "audio" in modalities else None
    t_video, t_audio = torch.rand(2, N), torch.rand(2, N)
    with torch.no_grad():
        full = micro(video, audio, t_video, t_audio, encoder_hidden_states=text)
        video_out, audio_out = incremental(micro, video, audio, text, t_video, t_audio, N)
    if video is not None:
        assert (video_out - full.video).abs().max() <= 1e-4
        assert full.video.shape == video.shape
    if audio is not None:
        assert (audio_out - full.audio).abs().max() <= 1e-4
        assert full.audio.shape == audio.shape


def test_teacher_forcing_sees_clean_context_only(micro, make_latents):
    N = 3
    noisy_video, noisy_audio, text = make_latents(micro, N, seed=1)
    clean_video, clean_audio, _ = make_latents(micro, N, seed=2)
    t = torch.rand(2, N)
    with torch.no_grad():
        forced = micro(noisy_video, noisy_audio, t, t, encoder_hidden_states=text, context_video=clean_video, context_audio=clean_audio)
        for c in range(N):
            # The same prediction, incrementally: clean chunks < c refreshed into the cache at t = 0, then noisy chunk c.
            cache = KVCache(sink=N, window=0)
            for p in range(c):
                micro.forward_chunks(cache, chunk(clean_video, micro, p), chunk(clean_audio, micro, p), 0.0, 0.0, encoder_hidden_states=text, write=True)
            out = micro.forward_chunks(cache, chunk(noisy_video, micro, c), chunk(noisy_audio, micro, c), t[:, c : c + 1], t[:, c : c + 1], encoder_hidden_states=text)
            assert (out.video - chunk(forced.video, micro, c)).abs().max() <= 1e-4
            assert (out.audio - chunk(forced.audio, micro, c)).abs().max() <= 1e-4


def test_causality_a_later_chunk_never_changes_an_earlier_one(micro, make_latents):
    video, audio, text = make_latents(micro, 3)
    t = torch.rand(2, 3)
    changed_video, changed_audio = video.clone(), audio.clone()
    changed_video[:, :, -2:] += 1.0  # the last chunk of each
    changed_audio[:, :, -8:] += 1.0
    with torch.no_grad():
        a = micro(video, audio, t, t, encoder_hidden_states=text)
        b = micro(changed_video, changed_audio, t, t, encoder_hidden_states=text)
    assert torch.equal(a.video[:, :, :4], b.video[:, :, :4]) and torch.equal(a.audio[:, :, :16], b.audio[:, :, :16])
    assert not torch.allclose(a.video[:, :, 4:], b.video[:, :, 4:])


def test_joint_window_relaxes_causality_inside_the_window(micro, make_latents):
    video, audio, text = make_latents(micro, 2)
    changed = video.clone()
    changed[:, :, 2:] += 1.0  # second chunk
    with torch.no_grad():
        outs = {
            (joint, name): micro.forward_chunks(KVCache(4, 0), v, audio, 0.5, 0.5, encoder_hidden_states=text, joint=joint).video
            for joint in (False, True)
            for name, v in (("same", video), ("changed", changed))
        }
    assert torch.equal(outs[(False, "same")][:, :, :2], outs[(False, "changed")][:, :, :2])
    assert not torch.allclose(outs[(True, "same")][:, :, :2], outs[(True, "changed")][:, :, :2])


def test_a_fusion_causal_window_reads_each_modality_jointly_and_the_other_causally(micro, make_latents, monkeypatch):
    """joint=True, joint_fusion=False: every self-attention of the window sees all of its chunks;
    the fusion between audio and video lets a chunk see the other modality up to its own chunk."""
    from avgen.models import transformer

    masks = {}
    attend = transformer._attend_with_cache

    def recording(cache, view, write, layer, stream, *args):
        masks[stream] = args[6].chunk_mask()  # (query chunks, key chunks) of its Visibility
        return attend(cache, view, write, layer, stream, *args)

    monkeypatch.setattr(transformer, "_attend_with_cache", recording)
    video, audio, text = make_latents(micro, 3)
    with torch.no_grad():
        micro.forward_chunks(KVCache(4, 0), video, audio, 0.5, 0.5, encoder_hidden_states=text, joint=True, joint_fusion=False)
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    assert masks["video"].all() and masks["audio"].all()
    assert torch.equal(masks["video_from_audio"], causal) and torch.equal(masks["audio_from_video"], causal)


def test_per_chunk_noise_levels_and_step_size_change_the_output(micro, make_latents):
    video, audio, text = make_latents(micro, 2)
    with torch.no_grad():
        base = micro(video, audio, torch.tensor([[0.2, 0.9]] * 2), 0.5, encoder_hidden_states=text).video
        other_level = micro(video, audio, torch.tensor([[0.2, 0.3]] * 2), 0.5, encoder_hidden_states=text).video
        few_step = micro(video, audio, torch.tensor([[0.2, 0.9]] * 2), 0.5, step_video=0.25, encoder_hidden_states=text).video
    assert torch.equal(base[:, :, :2], other_level[:, :, :2]) and not torch.allclose(base[:, :, 2:], other_level[:, :, 2:])
    assert not torch.allclose(base, few_step)


def test_fresh_fusion_and_step_embedding_change_nothing(micro_config, make_latents):
    torch.manual_seed(0)
    model = CausalAVTransformer(**micro_config).eval()
    video, audio, text = make_latents(model, 2)
    with torch.no_grad():
        joint = model(video, audio, 0.4, 0.4, step_video=0.5, encoder_hidden_states=text).video
        alone = model(video=video, timestep_video=0.4, encoder_hidden_states=text).video
    assert torch.equal(joint, alone)


def test_fusion_off_builds_no_fusion_layers(micro_config):
    model = CausalAVTransformer(**{**micro_config, "fusion": False})
    assert model.fusion_blocks is None
    assert not any("fusion" in name for name in model.state_dict())


def test_wan_state_dict_loads_strictly_and_matches_without_causality(micro_config):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    wan = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=32, ffn_dim=48, num_layers=2, rope_max_seq_len=32,
    ).eval()  # fmt: skip
    ours = CausalAVTransformer(**{**micro_config, "chunk_frames": 1}).eval()
    ours.video.load_state_dict(wan.state_dict(), strict=True)
    video = torch.randn(2, 4, 5, 8, 12)
    text = torch.randn(2, 9, 16)
    t = torch.tensor([300.0, 720.0])
    with torch.no_grad():
        reference = wan(video, t, text).sample
        output = ours(video=video, timestep_video=t / 1000, encoder_hidden_states=text, causal=False).video
    assert (reference - output).abs().max() <= 1e-5


def test_save_and_load_round_trip(micro, make_latents, tmp_path):
    micro.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = CausalAVTransformer.from_pretrained(tmp_path).eval()
    video, audio, text = make_latents(micro, 2)
    with torch.no_grad():
        a = micro(video, audio, 0.3, 0.6, encoder_hidden_states=text)
        b = loaded(video, audio, 0.3, 0.6, encoder_hidden_states=text)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)


def test_wan_1_3b_preset_has_the_shapes_of_wan_2_1_t2v_1_3b():
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        wan = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30,
        )  # fmt: skip
        ours = CausalAVTransformer.from_preset("wan-1.3b")
    wan_shapes = {name: tuple(t.shape) for name, t in wan.state_dict().items()}
    assert {name: tuple(t.shape) for name, t in ours.video.state_dict().items()} == wan_shapes
    assert ours.fusion_blocks is not None and len(ours.audio.blocks) == 30


def test_presets_by_name():
    tiny = CausalAVTransformer.from_preset("tiny")
    assert tiny.config.num_layers == 4
    from avgen.models import preset_config

    wan = preset_config("wan-1.3b")
    assert (wan["num_layers"], wan["video_dim"], wan["video_num_heads"], wan["video_ffn_dim"]) == (30, 1536, 12, 8960)
    with pytest.raises(ValueError, match="unknown model preset 'huge': choose one of tiny, wan-1.3b"):
        CausalAVTransformer.from_preset("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(video=torch.zeros(1, 5, 2, 4, 6)), r"video latents must be \(B, 4, F, H, W\)"),
        (dict(video=torch.zeros(1, 4, 3, 4, 6)), "multiple of chunk_frames=2"),
        (dict(video=torch.zeros(1, 4, 2, 5, 6)), "multiples of the patch"),
        (dict(audio=torch.zeros(1, 3, 7)), "positive multiple of 8 per chunk"),
        (dict(video=torch.zeros(1, 4, 2, 4, 6), audio=torch.zeros(1, 3, 16)), "same chunks, got 1 and 2"),
        (dict(video=torch.zeros(1, 4, 2, 4, 6), timestep_video=torch.zeros(1, 3)), r"timestep_video must be \(B,\) or \(B, Nc\) = \(1, 1\)"),
        (dict(video=torch.zeros(1, 4, 2, 4, 6)), "timestep_video is required"),
        (dict(), "give video latents, audio latents or both"),
    ],
)
def test_bad_input_names_the_expected_value(micro, kwargs, message):
    kwargs.setdefault("encoder_hidden_states", torch.zeros(1, 5, 16))
    if "timestep_video" not in kwargs and message != "timestep_video is required" and "video" in kwargs:
        kwargs["timestep_video"] = 0.5
    if "audio" in kwargs:
        kwargs.setdefault("timestep_audio", 0.5)
    with pytest.raises(ValueError, match=message):
        micro(**kwargs)


def test_unknown_backend_is_refused(micro):
    with pytest.raises(ValueError, match="unknown attention backend 'fast': choose one of sdpa, flex, flash, xformers"):
        micro.set_attention_backend("fast")


def test_perturb_helper_really_changes_fusion(micro_config, perturbed):
    torch.manual_seed(0)
    fresh = CausalAVTransformer(**micro_config)
    assert all(float(p.detach().abs().sum()) == 0 for n, p in fresh.named_parameters() if "fusion_blocks" in n and "to_out" in n)
    perturbed(fresh)
    assert all(float(p.detach().abs().sum()) > 0 for n, p in fresh.named_parameters() if "fusion_blocks" in n and "to_out" in n)


def test_an_audio_tower_grown_onto_a_video_model_leaves_its_video_predictions_unchanged(micro_config, make_latents):
    """A converted video model extended by an audio tower, fusion and step-size inputs predicts the
    same video at every noise level and step size until the new parts train."""
    torch.manual_seed(0)
    video_config = {**micro_config, "modalities": ("video",), "fusion": False, "step_conditioning": False}
    video_model = CausalAVTransformer(**video_config).eval()
    grown = video_model.extended(modalities=("video", "audio"), fusion=True, step_conditioning=True).eval()
    assert grown.modalities == ("video", "audio") and grown.fusion_blocks is not None
    assert all(torch.equal(tensor, grown.state_dict()[name]) for name, tensor in video_model.state_dict().items())
    video, audio, text = make_latents(grown, 3)
    t, d = torch.rand(2, 3), torch.rand(2, 3)
    with torch.no_grad():
        alone = video_model(video, None, t, encoder_hidden_states=text).video
        together = grown(video, audio, t, t, step_video=d, step_audio=d, encoder_hidden_states=text)
    assert torch.equal(alone, together.video)
    assert together.audio.shape == audio.shape


def test_extending_refuses_to_drop_a_weight(micro):
    with pytest.raises(ValueError, match="would drop or reshape"):
        micro.extended(modalities=("video",))
    with pytest.raises(ValueError, match="would drop or reshape"):
        micro.extended(audio_dim=32)
