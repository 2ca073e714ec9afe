import numpy as np
import pytest
import torch

from avgen.world import WorldConfig, WorldDataset, is_held_out


def test_items_are_video_audio_and_prompt(tmp_path):
    dataset = WorldDataset("train", num_clips=3, seconds=2.0, cache_dir=tmp_path)
    item = dataset[1]
    assert item["video"].shape == (3, 32, 64, 64) and item["video"].dtype == torch.float32
    assert item["audio"].shape == (1, 32_000) and item["audio"].dtype == torch.float32
    assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0
    assert isinstance(item["prompt"], str) and item["prompt"]
    assert len(dataset) == 3


def test_splits_never_share_a_character():
    train = WorldDataset("train", num_clips=200, seconds=1.0)
    held_out = WorldDataset("held-out", num_clips=200, seconds=1.0)
    train_ids = {train.clip(i).character.id for i in range(len(train))}
    held_out_ids = {held_out.clip(i).character.id for i in range(len(held_out))}
    assert not train_ids & held_out_ids
    assert not any(is_held_out(i) for i in train_ids) and all(is_held_out(i) for i in held_out_ids)
    assert len(train_ids) > 150  # many characters, not a handful


def test_rendered_clips_are_cached_and_reused(tmp_path, monkeypatch):
    first = WorldDataset("held-out", num_clips=2, seconds=1.0, cache_dir=tmp_path)[0]
    cached = list(tmp_path.rglob("*.npz"))
    assert len(cached) == 1

    def no_rendering(*args, **kwargs):
        raise AssertionError("a cached clip was rendered again")

    monkeypatch.setattr("avgen.world.clip.Clip.render", no_rendering)
    again = WorldDataset("held-out", num_clips=2, seconds=1.0, cache_dir=tmp_path)[0]
    assert torch.equal(first["video"], again["video"]) and torch.equal(first["audio"], again["audio"])
    assert first["prompt"] == again["prompt"]


def test_cache_is_keyed_by_world_config(tmp_path):
    WorldDataset("train", num_clips=1, seconds=1.0, cache_dir=tmp_path)[0]
    WorldDataset("train", num_clips=1, seconds=1.0, cache_dir=tmp_path, config=WorldConfig(height=32, width=32))[0]
    assert len({path.parent.parent for path in tmp_path.rglob("*.npz")}) == 2


def test_same_index_same_clip_and_seeds_differ():
    a = WorldDataset("train", num_clips=4, seconds=1.0, seed=0)
    b = WorldDataset("train", num_clips=4, seconds=1.0, seed=1)
    assert np.array_equal(a[2]["audio"].numpy(), WorldDataset("train", num_clips=4, seconds=1.0, seed=0)[2]["audio"].numpy())
    assert a.clip_seed(2) != b.clip_seed(2)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown split"):
        WorldDataset("validation")
    with pytest.raises(ValueError, match="whole number of frames"):
        WorldDataset(seconds=0.03)
    with pytest.raises(IndexError):
        WorldDataset(num_clips=2, seconds=1.0)[2]
