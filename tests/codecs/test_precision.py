import pytest
import torch

from avgen.codecs.precision import cast_codec, codec_dtype, native_bfloat16
from avgen.codecs.presets import tiny_video_codec


def test_bfloat16_streaming_equals_whole_and_stays_near_float32():
    torch.manual_seed(0)
    codec = tiny_video_codec().eval()
    latents = torch.randn(1, 8, 4, 8, 8)
    reference = codec.decode_latents(latents)
    cast_codec(codec, torch.bfloat16)
    assert codec.dtype == torch.bfloat16
    whole = codec.decode_latents(latents.bfloat16())
    stream = codec.stream()
    with torch.no_grad():
        chunks = torch.cat([stream.decode(latents[:, :, i : i + 1].bfloat16()) for i in range(4)], 2)
    assert torch.equal(chunks, whole)
    assert (whole.float() - reference).abs().mean() < 1e-2


def test_auto_is_bfloat16_exactly_where_it_is_native():
    assert codec_dtype("auto", "cpu") == (torch.bfloat16 if native_bfloat16("cpu") else torch.float32)
    assert (codec_dtype("fp32", "cpu"), codec_dtype("bf16", "cpu")) == (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="unknown codec dtype 'half': choose one of auto, fp32, bf16"):
        codec_dtype("half", "cpu")
