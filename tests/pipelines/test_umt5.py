"""A real umT5 text encoder (transformers) in place of the world encoder, as Wan uses."""

import numpy as np
import pytest
import torch
import transformers


@pytest.fixture(scope="module")
def umt5_pipeline(components):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from avgen import CausalAVTransformer, RollingForcingPipeline
    from avgen.text import world_vocabulary

    vocabulary = {word: i for i, word in enumerate(["<pad>", "</s>", "<unk>", *world_vocabulary()[2:]])}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    encoder = transformers.UMT5EncoderModel(
        transformers.UMT5Config(vocab_size=len(vocabulary), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    ).eval()
    transformer = CausalAVTransformer.from_preset("tiny", num_layers=1, text_dim=32).eval()
    pipe = RollingForcingPipeline(**{**components, "transformer": transformer, "text_encoder": encoder, "tokenizer": tokenizer})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_umt5_pipeline_generates_and_round_trips(umt5_pipeline, prompt, tmp_path):
    from avgen import RollingForcingPipeline

    out = umt5_pipeline(prompt, seconds=0.5, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 8, 64, 64, 3)
    umt5_pipeline.save_pretrained(tmp_path)
    loaded = RollingForcingPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.text_encoder).__name__ == "UMT5EncoderModel"
    again = loaded(prompt, seconds=0.5, generator=torch.Generator().manual_seed(0))
    assert np.abs(again.audio - out.audio).max() <= 1e-5
