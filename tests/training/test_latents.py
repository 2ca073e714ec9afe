"""The latent cache: a new file when what decides the latents changes, the same one when only a decoder does."""

import json
import shutil

from safetensors.torch import load_file, save_file

from avgen.training.latents import LatentClips


def cache_path(codecs, cache_dir):
    return LatentClips.cache_path(codecs, clips=4, latent_frames=3, cache_dir=cache_dir, seed=0)


def change_tensor(folder, prefix):
    path = folder / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    name = next(name for name in sorted(tensors) if name.startswith(prefix))
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, path)


def test_the_cache_key_follows_the_encoders_and_latent_statistics_only(codecs, tmp_path):
    copy = tmp_path / "codecs"
    shutil.copytree(codecs, copy)
    original = cache_path(copy, tmp_path)

    change_tensor(copy / "audio_codec", "decoder.")
    change_tensor(copy / "vae", "decoder.")
    assert cache_path(copy, tmp_path) == original

    change_tensor(copy / "audio_codec", "encoder.")
    changed_encoder = cache_path(copy, tmp_path)
    assert changed_encoder != original

    config_path = copy / "vae" / "config.json"
    config = json.loads(config_path.read_text())
    config["latents_std"] = [2.0 * s for s in config["latents_std"]]
    config_path.write_text(json.dumps(config))
    assert cache_path(copy, tmp_path) not in (original, changed_encoder)
