import pytest
import torch

from avgen.models import CausalAVTransformer, KVCache


@pytest.fixture
def one_layer(micro_config, perturbed):
    torch.manual_seed(0)
    return perturbed(CausalAVTransformer(**{**micro_config, "num_layers": 1})).eval()


def run_chunks(model, cache, video, audio, text, start, stop, write=True):
    """Write chunks [start, stop) one by one; return the last output."""
    cf, apf = model.config.chunk_frames, model.config.audio_latents_per_frame
    out = None
    for c in range(start, stop):
        out = model.forward_chunks(
            cache, video[:, :, c * cf : (c + 1) * cf], audio[:, :, c * cf * apf : (c + 1) * cf * apf], 0.0, 0.0,
            encoder_hidden_states=text, write=write,
        )  # fmt: skip
    return out


def test_memory_is_flat_and_positions_stay_in_the_table(one_layer, make_latents):
    video, audio, text = make_latents(one_layer, 1, batch=1)
    video, audio = video.repeat(1, 1, 1000, 1, 1), audio.repeat(1, 1, 1000)
    cache = KVCache(sink=1, window=3)
    sizes = {}
    with torch.no_grad():
        for c in range(1000):
            out = run_chunks(one_layer, cache, video, audio, text, c, c + 1)
            if c + 1 in (10, 100, 1000):
                sizes[c + 1] = cache.nbytes()
    assert sizes[10] == sizes[100] == sizes[1000] > 0
    assert cache.num_chunks == 1000 and cache.num_cached == 4
    assert torch.isfinite(out.video).all() and torch.isfinite(out.audio).all()
    # 1,000 chunks of 2 latent frames are 2,000 frames, far past the 64-frame rotary table.
    assert 1000 * one_layer.config.chunk_frames > one_layer.config.rope_max_seq_len


def test_without_a_window_positions_past_the_table_are_an_error(one_layer, make_latents):
    video, audio, text = make_latents(one_layer, 40, batch=1)
    cache = KVCache(sink=40, window=0)
    with torch.no_grad(), pytest.raises(ValueError, match="past the model's table of 64 latent frames"):
        run_chunks(one_layer, cache, video, audio, text, 0, 40)


def test_sink_and_window_are_read_at_rebased_positions(micro_config, make_latents):
    # One layer without fusion: a chunk's keys depend only on its own input, so after eviction the
    # cache [chunk 0 | chunks 5, 6] followed by chunk 7 must equal a fresh run over chunks 0, 5, 6, 7.
    torch.manual_seed(0)
    one_layer = CausalAVTransformer(**{**micro_config, "num_layers": 1, "fusion": False}).eval()
    video, audio, text = make_latents(one_layer, 8, batch=1)
    cf, apf = one_layer.config.chunk_frames, one_layer.config.audio_latents_per_frame
    with torch.no_grad():
        cache = KVCache(sink=1, window=2)
        run_chunks(one_layer, cache, video, audio, text, 0, 7)
        evicted = run_chunks(one_layer, cache, video, audio, text, 7, 8, write=False)
        pick = [0, 5, 6, 7]
        fresh_video = torch.cat([video[:, :, c * cf : (c + 1) * cf] for c in pick], 2)
        fresh_audio = torch.cat([audio[:, :, c * cf * apf : (c + 1) * cf * apf] for c in pick], 2)
        reference = run_chunks(one_layer, KVCache(sink=4, window=0), fresh_video, fresh_audio, text, 0, 4, write=True)
    assert (evicted.video - reference.video).abs().max() <= 1e-5
    assert (evicted.audio - reference.audio).abs().max() <= 1e-5


def test_ring_order_keeps_the_sink_and_the_most_recent_chunks():
    cache = KVCache(sink=2, window=3)
    for _ in range(9):
        keys = torch.full((1, 1, 1, 1), float(cache.num_chunks))
        cache.write(0, "video", keys, keys, num_chunks=1)
        cache.commit(1)
    keys, _ = cache.read(0, "video")
    assert keys.flatten().tolist() == [0.0, 1.0, 6.0, 7.0, 8.0]


def test_reads_do_not_write_and_refresh_does(micro, make_latents):
    video, audio, text = make_latents(micro, 2)
    cache = KVCache(sink=1, window=2)
    with torch.no_grad():
        micro.forward_chunks(cache, video[:, :, :2], audio[:, :, :8], 0.7, 0.7, encoder_hidden_states=text)
        assert cache.num_chunks == 0
        micro.refresh(cache, video[:, :, :2], audio[:, :, :8], encoder_hidden_states=text)
        assert cache.num_chunks == 1


def test_prompt_change_clears_only_the_text(micro, make_latents):
    video, audio, text = make_latents(micro, 2)
    cache = KVCache(sink=2, window=2)
    with torch.no_grad():
        micro.forward_chunks(cache, video[:, :, :2], audio[:, :, :8], 0.0, 0.0, encoder_hidden_states=text, write=True)
        self_keys = cache.read(0, "video")[0].clone()
        before = micro.forward_chunks(cache, video[:, :, 2:], audio[:, :, 8:], 0.5, 0.5).video  # the cached prompt
        cache.clear_text()
        with pytest.raises(ValueError, match="encoder_hidden_states"):
            micro.forward_chunks(cache, video[:, :, 2:], audio[:, :, 8:], 0.5, 0.5)
        after = micro.forward_chunks(cache, video[:, :, 2:], audio[:, :, 8:], 0.5, 0.5, encoder_hidden_states=-text).video
    assert cache.num_chunks == 1 and torch.equal(cache.read(0, "video")[0], self_keys)
    assert not torch.allclose(before, after)


def test_bad_cache_sizes_are_refused():
    with pytest.raises(ValueError, match="sink and window"):
        KVCache(sink=0, window=0)


def test_a_rows_view_reads_those_rows_and_cannot_write(micro, make_latents):
    video, audio, text = make_latents(micro, 2, batch=4)
    cache = KVCache(sink=1, window=2)
    with torch.no_grad():
        micro.refresh(cache, video[:, :, :2], audio[:, :, :8], encoder_hidden_states=text)
        view = cache.rows(2)
        assert torch.equal(view.read(0, "video")[0], cache.read(0, "video")[0][:2])
        with pytest.raises(RuntimeError, match="read-only view"):
            micro.refresh(view, video[:2, :, 2:], audio[:2, :, 8:], encoder_hidden_states=text[:2])
    assert cache.num_chunks == 1
