"""Wan2.1 base folders (diffusers and original layouts) -> vae/, text_encoder/, tokenizer/."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open

from avgen.codecs.video import VideoCodec
from avgen.convert import wan_base
from avgen.convert.wan_base import BaseInfo, detect_layout, read_base_info, write_base_components

PROMPTS = ["a red round face talks", "glasses"]
LAYOUTS = ["diffusers", "original"]


@pytest.fixture(scope="module")
def bases(tiny_wan_base_diffusers, tiny_wan_base_original):
    return {"diffusers": tiny_wan_base_diffusers, "original": tiny_wan_base_original}


@pytest.fixture(scope="module")
def converted(bases, tmp_path_factory):
    """layout -> (BaseInfo, pipeline folder) of a float32 conversion."""
    result = {}
    for layout, folder in bases.items():
        out = tmp_path_factory.mktemp(f"converted-{layout}") / "pipeline"
        result[layout] = write_base_components(folder, out, torch.float32), out
    return result


@pytest.fixture(scope="module")
def reference_codec_io(tiny_wan):
    """(video, latents, decoded video) of the tiny VAE: (1, 3, 5, 8, 8), (1, 16, 2, 1, 1), (1, 3, 5, 8, 8)."""
    codec = as_codec(tiny_wan.vae)
    video = torch.rand(1, 3, 5, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = codec.encode_latents(video)
    return video, latents, codec.decode_latents(latents)


def dtypes_on_disk(folder: Path) -> set[str]:
    dtypes = set()
    for path in folder.glob("*.safetensors"):
        with safe_open(path, framework="pt") as handle:
            dtypes |= {handle.get_slice(key).get_dtype() for key in handle.keys()}
    return dtypes


def encode(folder: Path, prompts: list[str]) -> torch.Tensor:
    from avgen.text import encode_prompts

    encoder = transformers.UMT5EncoderModel.from_pretrained(folder / "text_encoder").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "tokenizer")
    with torch.no_grad():
        return encode_prompts(encoder, tokenizer, prompts, "cpu", torch.float32)


def as_codec(vae) -> VideoCodec:
    codec = VideoCodec.from_config(vae.config).eval()
    codec.load_state_dict(vae.state_dict())
    return codec


@pytest.mark.parametrize("layout", LAYOUTS)
def test_detects_layout(layout, bases):
    assert detect_layout(bases[layout]) == layout


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reports_what_the_transformer_must_match(layout, converted):
    info, _ = converted[layout]
    assert info == BaseInfo(layout=layout, text_dim=32, z_dim=16, spatial_compression=8, temporal_compression=4)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_converted_vae_encodes_and_decodes_as_the_original(layout, converted, tiny_wan, reference_codec_io):
    _, out = converted[layout]
    vae = VideoCodec.from_pretrained(out / "vae").eval()
    for key, value in tiny_wan.vae.state_dict().items():
        assert torch.equal(vae.state_dict()[key], value), key
    video, latents, decoded = reference_codec_io
    assert latents.shape == (1, 16, 2, 1, 1)
    assert (vae.encode_latents(video) - latents).abs().max() <= 1e-5
    assert (vae.decode_latents(latents) - decoded).abs().max() <= 1e-5
    assert dtypes_on_disk(out / "vae") == {"F32"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_converted_text_encoder_gives_the_original_embeddings(layout, converted, tiny_wan, tiny_wan_text_embeddings):
    _, out = converted[layout]
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer(PROMPTS).input_ids == tiny_wan.tokenizer(PROMPTS).input_ids
    embeddings = encode(out, PROMPTS)
    expected = tiny_wan_text_embeddings(PROMPTS)
    assert embeddings.shape == expected.shape == (2, 512, 32)
    assert (embeddings - expected).abs().max() <= 1e-5


def test_diffusers_layout_in_its_dtype_is_hard_linked_not_rewritten(converted, bases):
    _, out = converted["diffusers"]
    for component in ("vae", "text_encoder", "tokenizer"):
        for source in (bases["diffusers"] / component).iterdir():
            assert os.path.samefile(source, out / component / source.name), source


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bfloat16_text_encoder_and_float32_vae(layout, bases, tmp_path, tiny_wan, monkeypatch):
    # Small shards: the rewrite must produce an index that transformers reads.
    monkeypatch.setattr(wan_base, "MAX_SHARD_BYTES", 20_000)
    write_base_components(bases[layout], tmp_path / "out", torch.bfloat16)
    text_encoder = tmp_path / "out" / "text_encoder"
    assert dtypes_on_disk(text_encoder) == {"BF16"}
    assert len(list(text_encoder.glob("model-*-of-*.safetensors"))) > 1
    assert (text_encoder / "model.safetensors.index.json").is_file()
    assert json.loads((text_encoder / "config.json").read_text())["dtype"] == "bfloat16"
    assert dtypes_on_disk(tmp_path / "out" / "vae") == {"F32"}
    encoder = transformers.UMT5EncoderModel.from_pretrained(text_encoder, dtype=torch.float32).eval()
    for key, value in tiny_wan.text_encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key  # the tiny weights are bf16-exact


def test_reads_info_without_writing(bases):
    assert read_base_info(bases["original"]).text_dim == 32


def broken_copy(base: Path, target: Path, remove: str) -> Path:
    shutil.copytree(base, target, copy_function=os.link)
    path = target / remove
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return target


@pytest.mark.parametrize(
    "layout, remove, message",
    [
        ("diffusers", "vae", r"has no VAE \(vae/ or Wan2.1_VAE.pth\): pass the Wan2.1-T2V-1.3B folder as --base"),
        ("original", "Wan2.1_VAE.pth", r"has no VAE \(vae/ or Wan2.1_VAE.pth\)"),
        ("diffusers", "text_encoder", r"has no text encoder \(text_encoder/ in the diffusers layout\)"),
        ("original", "models_t5_umt5-xxl-enc-bf16.pth", r"has no text encoder \(models_t5_umt5-xxl-enc-bf16.pth in"),
        ("diffusers", "tokenizer", r"has no tokenizer \(tokenizer/ in the diffusers layout\)"),
        ("original", "google/umt5-xxl", r"has no tokenizer \(google/umt5-xxl/ in the original layout\)"),
        ("diffusers", "text_encoder/model.safetensors.index.json", r"has no model.safetensors: re-download"),
        ("diffusers", "vae/config.json", r"vae' has no config.json: re-download"),
    ],
)
def test_incomplete_folder_is_refused_and_nothing_is_written(layout, remove, message, bases, tmp_path):
    folder = broken_copy(bases[layout], tmp_path / "base", remove)
    with pytest.raises(ValueError, match=message) as error:
        write_base_components(folder, tmp_path / "out", torch.float32)
    assert "\n" not in str(error.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["base"]  # no out/, no staging folder left


class Payload:
    """A pickled object whose unpickling would run code (here: leave a file behind)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_python_objects_is_refused_not_loaded(bases, tmp_path):
    folder = broken_copy(bases["original"], tmp_path / "base", "models_t5_umt5-xxl-enc-bf16.pth")
    marker = tmp_path / "unpickled"
    torch.save({"token_embedding.weight": torch.zeros(4, 32), "payload": Payload(marker)},
               folder / "models_t5_umt5-xxl-enc-bf16.pth")  # fmt: skip
    with pytest.raises(ValueError, match="which avgen does not unpickle") as error:
        write_base_components(folder, tmp_path / "out", torch.float32)
    assert "\n" not in str(error.value)
    assert not marker.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["base"]


def test_foreign_t5_weights_are_refused(bases, tmp_path):
    folder = broken_copy(bases["original"], tmp_path / "base", "models_t5_umt5-xxl-enc-bf16.pth")
    state_dict = torch.load(bases["original"] / "models_t5_umt5-xxl-enc-bf16.pth", weights_only=True)
    state_dict["blocks.0.attn.extra.weight"] = torch.zeros(2)
    torch.save(state_dict, folder / "models_t5_umt5-xxl-enc-bf16.pth")
    with pytest.raises(ValueError, match="unexpected key 'blocks.0.attn.extra.weight'"):
        write_base_components(folder, tmp_path / "out", torch.float32)
    assert not (tmp_path / "out").exists()


def test_corrupt_safetensors_are_refused(bases, tmp_path):
    folder = broken_copy(bases["diffusers"], tmp_path / "base", "vae/diffusion_pytorch_model.safetensors")
    (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="is not a readable safetensors file .*: re-download it"):
        write_base_components(folder, tmp_path / "out", torch.float32)
    assert not (tmp_path / "out").exists()


def test_existing_output_and_unknown_dtype_are_refused(bases, tmp_path):
    (tmp_path / "out" / "vae").mkdir(parents=True)
    with pytest.raises(ValueError, match="already exists: choose a new output folder"):
        write_base_components(bases["diffusers"], tmp_path / "out", torch.float32)
    with pytest.raises(ValueError, match="dtype must be torch.bfloat16 or torch.float32"):
        write_base_components(bases["diffusers"], tmp_path / "new", torch.float16)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["vae"]
