import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from avgen import RollingForcingPipeline
from avgen.media import probe, read_media


@pytest.fixture(scope="module")
def model(components, tmp_path_factory):
    folder = tmp_path_factory.mktemp("avgen-random")
    RollingForcingPipeline(**components).save_pretrained(folder)
    return folder


def generate(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avgen", "generate", *args], cwd=cwd, capture_output=True, text=True, env=os.environ)


def test_generate_writes_h264_and_aac_of_the_length_asked(model, prompt, tmp_path):
    result = generate(prompt, "--seconds", "2", "--model", str(model), "-o", "out.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = probe(tmp_path / "out.mp4")
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    media = read_media(tmp_path / "out.mp4")
    assert len(media.frames) == 32 and media.audio.shape[-1] == 32_000
    assert media.metadata["comment"] == prompt


def test_a_request_the_world_cannot_show_is_named_and_still_generated(model, tmp_path):
    prompt = "A red round face with glasses talks in a deep voice on a purple background."
    result = generate(prompt, "--seconds", "0.5", "--model", str(model), "-o", "p.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "note:" in line]
    assert notes == ["avgen generate: note: this model cannot show purple background (backgrounds it knows: grey, sky-blue, "
                     "mint, lavender, sand, navy); it generates anyway"]  # fmt: skip
    assert json.loads(result.stdout)["note"].startswith("this model cannot show purple background")
    assert (tmp_path / "p.mp4").is_file()


def test_generate_from_a_reference_image(model, prompt, tmp_path):
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(tmp_path / "ref.png")
    result = generate(prompt, "--seconds", "1", "--pipeline", "mutual", "--image", "ref.png", "--model", str(model), "-o", "i.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_media(tmp_path / "i.mp4").frames) == 16


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seconds", "0"], "--seconds: must be > 0"),
        (["--pipeline", "fast"], "invalid choice: 'fast'"),
        (["--image", "missing.png"], "no such image"),
        (["--image", "not-an-image.png"], "cannot read image"),
        (["--video", "silent.mp4"], "this model was not trained to voice a given video"),
    ],
)
def test_bad_input_is_one_line_exit_2(model, prompt, tmp_path, args, message):
    (tmp_path / "not-an-image.png").write_text("plain text")
    result = generate(prompt, "--model", str(model), "-o", "out.mp4", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_empty_prompt_and_incomplete_weights_are_explained(model, tmp_path):
    empty = generate("  ", "--model", str(model), "-o", "out.mp4", cwd=tmp_path)
    assert empty.returncode == 2 and "prompt is empty" in empty.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text(json.dumps({"transformer": ["avgen", "CausalAVTransformer"]}))
    missing = generate("A red round face", "--model", str(broken), "-o", "out.mp4", cwd=tmp_path)
    assert missing.returncode == 2 and "lacks its transformer/ component" in missing.stderr




def test_compile_flag_compiles_the_transformer_and_generates_the_same(model, prompt, tmp_path, monkeypatch, capsys):
    from avgen.cli import main
    from avgen.models.compilation import compile_stages
    from avgen.models.transformer import CausalAVTransformer

    # Dynamo's "eager" backend: the stages really go through torch.compile, without inductor's minute of C++.
    monkeypatch.setattr(CausalAVTransformer, "compile", lambda self, **options: compile_stages(self, backend="eager"))
    monkeypatch.chdir(tmp_path)
    args = [prompt, "--seconds", "0.5", "--model", str(model)]
    assert main(["generate", *args, "-o", "eager.mp4"]) == 0
    assert "compiled" not in json.loads(capsys.readouterr().out)
    assert main(["generate", *args, "-o", "compiled.mp4", "--compile"]) == 0
    assert json.loads(capsys.readouterr().out)["compiled"] is True
    a, b = read_media(tmp_path / "eager.mp4"), read_media(tmp_path / "compiled.mp4")
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)


def test_an_unknown_vae_dtype_is_one_line_and_status_2(model, prompt, tmp_path, monkeypatch, capsys):
    from avgen.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["generate", prompt, "--model", str(model), "--vae-dtype", "half", "-o", "x.mp4"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "avgen generate: error: unknown codec dtype 'half': choose one of auto, fp32, bf16"
    ]


@pytest.fixture(scope="module")
def sentence_model(components, tmp_path_factory):
    """The same components with the sentence encoder, as avgen-tiny ships them."""
    from avgen.text import SentenceTextEncoder

    folder = tmp_path_factory.mktemp("avgen-sentence")
    text_dim = components["transformer"].config.text_dim
    RollingForcingPipeline(**{**components, "text_encoder": SentenceTextEncoder(dim=text_dim).eval()}).save_pretrained(folder)
    return folder


def test_any_english_generates_with_the_sentence_encoder(sentence_model, tmp_path):
    prompt = "A cheerful little fellow with a square head chatting away, green skin, on a purple backdrop!"
    result = generate(prompt, "--seconds", "0.5", "--model", str(sentence_model), "-o", "free.mp4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(read_media(tmp_path / "free.mp4").frames) == 8
    assert "this model cannot show purple backdrop" in json.loads(result.stdout)["note"]  # named; generated anyway


def test_capitals_punctuation_and_300_words_generate_with_the_sentence_encoder(sentence_model):
    """The encoder truncates what is past its 64 tokens; nothing about the text is an error."""
    pipe = RollingForcingPipeline.from_pretrained(sentence_model)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("ÜBER-LOUD?! " + "words " * 300, seconds=0.5, output_type="np")
    assert out.frames.shape[1] == 8 and np.isfinite(out.audio).all()
