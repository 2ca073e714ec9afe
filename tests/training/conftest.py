import pytest
import torch

from avgen.training import load_config

# A small world set: 4 clips of 6 chunks, batches of 2, one torch thread per process.
SMALL = {"clips": 4, "clip_chunks": 6, "batch_size": 2, "threads": 1, "warmup_steps": 1}


@pytest.fixture(scope="session")
def codecs(tmp_path_factory, narrow_codecs):
    """Untrained codecs of the tiny latent shapes (8 channels each), narrower so that encoding is fast."""
    folder = tmp_path_factory.mktemp("codecs")
    torch.manual_seed(0)
    vae, audio_codec = narrow_codecs()
    vae.save_pretrained(folder / "vae")
    audio_codec.save_pretrained(folder / "audio_codec")
    return folder


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def small_config(codecs, cache_dir, tmp_path):
    """config(stage, **changes) -> TrainingConfig on the small world set, writing under tmp_path."""

    def make(stage: str, **changes):
        values = {**SMALL, "codecs": str(codecs), "cache_dir": str(cache_dir), "output_dir": str(tmp_path / stage), **changes}
        return load_config(stage=stage, overrides=[f"{key}={value}" for key, value in values.items()])

    return make


def overrides(config) -> list[str]:
    """The --set arguments that reproduce `config` on a command line."""
    import dataclasses

    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    return [arg for key, value in values.items() if value is not None for arg in ("--set", f"{key}={value}")]
