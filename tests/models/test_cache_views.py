"""What each pass sees of the KV cache: the official attention budgets, the refresh's own reach,
re-rotated and fixed sink positions, and a prompt change that recaches the history (LongLive)."""

import pytest
import torch

from avgen.models import CausalAVTransformer, KVCache
from avgen.models.kv_cache import Reach
from avgen.rollout import Denoiser


def after(cache: KVCache, chunks: int) -> KVCache:
    cache.commit(chunks)  # positions depend only on how many chunks were written
    return cache


def rolling_forcing_cache() -> KVCache:
    """Rolling Forcing's: sink + 7 (24 frames of 3), 7 chunks of attention counting the queries."""
    return KVCache(sink=1, window=7, reach=Reach(7, keep_sink=True), refresh_reach=Reach(7, keep_sink=False))


def test_a_full_rolling_window_sees_the_sink_and_the_latest_earlier_chunk():
    view = after(rolling_forcing_cache(), 10).view(5)
    assert [view.time, view.query_time] == [(0, 1), 2]  # the sink re-rotated just before chunk 9
    assert after(rolling_forcing_cache(), 10).slot_order()[0] == 0 and len(view.slots) == 2
    shrinking = after(rolling_forcing_cache(), 10).view(2)  # the flush at the end sees more history
    assert len(shrinking.slots) == 5 and shrinking.query_time == 5


def test_the_refresh_sees_the_latest_chunks_in_time_and_the_sink_only_while_recent():
    early = after(rolling_forcing_cache(), 4).view(1, refresh=True)
    assert early.time == (0, 1, 2, 3) and early.slots == (0, 1, 2, 3)
    late = after(rolling_forcing_cache(), 10).view(1, refresh=True)
    assert len(late.slots) == 6 and 0 not in late.slots and late.query_time == 6


def test_fixed_sink_positions_keep_the_gap_until_the_table_ends():
    cache = after(KVCache(sink=1, window=3, reach=Reach(4), sink_positions="fixed"), 10)
    view = cache.view(1)
    assert [view.time, view.query_time] == [(0, 8, 9), 10]
    frozen = cache.view(1, max_time=8)  # the newest chunk would pass the table: the gap shrinks instead
    assert [frozen.time, frozen.query_time] == [(0, 5, 6), 7]


def test_without_a_budget_every_cached_chunk_is_read_in_time_order():
    view = after(KVCache(sink=1, window=3), 10).view(4)
    assert view.time == (0, 1, 2, 3) and view.slots == tuple(after(KVCache(sink=1, window=3), 10).slot_order())


def test_rewinding_forgets_the_ring_it_overwrote():
    cache = after(KVCache(sink=1, window=3), 10)
    cache.rewind(3)
    assert cache.held_chunks() == [0] and cache.num_chunks == 7
    with pytest.raises(ValueError, match="can rewind at most"):
        cache.rewind(1)


def test_a_recache_rewrites_the_history_after_the_sink_under_the_new_prompt():
    torch.manual_seed(0)
    model = CausalAVTransformer(
        video_in_channels=4, video_dim=24, video_num_heads=2, video_ffn_dim=48, num_layers=2, text_dim=16,
        freq_dim=32, chunk_frames=2, rope_max_seq_len=64, modalities=("video",), step_conditioning=False, fusion=False,
    ).eval()  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    chunks = [torch.randn(1, 4, 2, 4, 6, generator=generator) for _ in range(6)]
    old, new = torch.randn(1, 5, 16, generator=generator), torch.randn(1, 5, 16, generator=generator)
    layout = dict(sink=1, cache_window=3, reach=Reach(4))
    with torch.no_grad():
        denoiser = Denoiser(model, old, recache=True, **layout)
        for chunk in chunks:
            denoiser.refresh(chunk, None)
        denoiser.set_prompt(new)
        reference = Denoiser(model, old, **layout)
        reference.refresh(chunks[0], None)
        reference.cache.clear_text()
        model.forward_chunks(reference.cache, torch.cat(chunks[3:], 2), None, 0.0, encoder_hidden_states=new, write=True, joint=True)
        plain = Denoiser(model, old, **layout)
        for chunk in chunks:
            plain.refresh(chunk, None)
    # Keys are stored rotated at their absolute times, so compare what a next chunk reads from each.
    probe = torch.randn(1, 4, 2, 4, 6, generator=generator)
    with torch.no_grad():
        got, want, kept = (model.forward_chunks(d.cache, probe, None, 0.5, encoder_hidden_states=new).video for d in (denoiser, reference, plain))
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, kept, atol=1e-3)
    sink_keys = [d.cache.read(0, "video")[0][:, :24] for d in (denoiser, plain)]  # chunk 0: 2 frames x 12 tokens
    torch.testing.assert_close(*sink_keys)  # the sink keeps the old prompt's keys
