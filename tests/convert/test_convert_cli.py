"""`avgen convert` from the command line: a working folder from the fixture, one-line errors that leave nothing behind."""

import subprocess
import sys

import pytest
import torch


def avgen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "avgen", *map(str, args)], cwd=cwd, capture_output=True, text=True)


def tiny(official_tiny):
    return official_tiny / "tiny_self_forcing_format.pt"


def test_convert_then_generate_a_video_only_mp4(official_tiny, tiny_wan_base_original, tmp_path):
    result = avgen(
        "convert", tiny(official_tiny), "--base", tiny_wan_base_original, "--recipe", "rolling-forcing", "-o", "rf",
        "--num-heads", "2", "--text-length", "32", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = avgen("generate", "a red round face", "--model", "rf", "--seconds", "1", "--height", "32", "--width", "48", "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from avgen.media import probe

    info = probe(tmp_path / "out.mp4")
    assert info.video_codec == "h264" and info.audio_codec is None and (info.width, info.height) == (48, 32)


def write(path, payload):
    torch.save(payload, path)
    return path


class Payload:
    def __reduce__(self):  # runs on a plain unpickle; a weights-only load refuses it
        return (print, ("unpickled!",))


@pytest.mark.parametrize(
    "case, message",
    [
        ("text", "not a PyTorch checkpoint"),
        ("pickle", "which avgen does not unpickle"),
        ("critic", "Wan"),
        ("recipe", "unknown recipe 'self-forcing-2'"),
        ("base", "has no VAE"),
        ("lora-rank", "rank"),
        ("size", "latent channels"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, message, official_tiny, tiny_wan_base_diffusers, tmp_path):
    checkpoint, base, extra, recipe = tiny(official_tiny), tiny_wan_base_diffusers, [], "self-forcing"
    if case == "text":
        checkpoint = tmp_path / "notes.pt"
        checkpoint.write_text("not weights")
    elif case == "pickle":
        checkpoint = write(tmp_path / "evil.pt", {"generator_ema": Payload()})
    elif case == "critic":
        checkpoint = write(tmp_path / "critic.pt", {"generator_ema": {"model.fc.weight": torch.zeros(2, 2)}})
    elif case == "recipe":
        recipe = "self-forcing-2"
    elif case == "base":
        base = tmp_path / "empty-base"
        base.mkdir()
    elif case == "lora-rank":
        state = torch.load(checkpoint, weights_only=True)["generator_ema"]
        q = state["model.blocks.0.self_attn.q.weight"]
        lora = {
            "base_model.model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, q.shape[1]),
            "base_model.model.blocks.0.self_attn.q.lora_B.weight": torch.zeros(q.shape[0], 4),
        }
        extra = ["--lora", write(tmp_path / "lora.pt", lora), "--lora-rank", "8", "--lora-alpha", "8"]
    elif case == "size":
        state = torch.load(checkpoint, weights_only=True)["generator_ema"]
        state["model.patch_embedding.weight"] = state["model.patch_embedding.weight"][:, :8]
        checkpoint = write(tmp_path / "other.pt", {"generator_ema": state})
    result = avgen(
        "convert", checkpoint, "--base", base, "--recipe", recipe, "-o", "out", "--num-heads", "2", *extra, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("avgen convert: error:") and message in lines[0], result.stderr
    assert "unpickled!" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
