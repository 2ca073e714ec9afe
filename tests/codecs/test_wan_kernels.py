import copy

import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import DupUp3D, WanCausalConv3d, WanRMS_norm, WanUpsample

from avgen.codecs import VideoCodec
from avgen.codecs.presets import TINY_VIDEO
from avgen.codecs.wan_kernels import (
    FASTER,
    ChannelsLastDupUp3D,
    ChannelsLastUpsample,
    SumOfSquaresRMSNorm,
    TimeTapConv3d,
    use_faster_kernels,
)


def faster_copy(module: torch.nn.Module) -> torch.nn.Module:
    faster = copy.deepcopy(module)
    use_faster_kernels(faster)
    return faster


@pytest.mark.parametrize(
    "kernel, stride, padding, frames",
    [((3, 3, 3), 1, 1, 6), ((3, 1, 1), (2, 1, 1), 0, 7), ((1, 1, 1), 1, 0, 3), ((3, 3, 3), 1, 1, 1)],
    ids=["3x3x3", "time-stride-2", "1x1x1", "one-frame"],
)
def test_time_tap_convolution_equals_the_stock_one_with_gradients(kernel, stride, padding, frames):
    torch.manual_seed(0)
    stock = WanCausalConv3d(6, 5, kernel, stride=stride, padding=padding)
    faster = faster_copy(stock)
    assert isinstance(faster, TimeTapConv3d)
    x = torch.randn(2, 6, frames, 9, 7, requires_grad=True)
    cache = torch.randn(2, 6, 2, 9, 7)  # the last frames of the previous chunk, as streaming passes them
    for cache_x in (None, cache, cache[:, :, -1:]):  # a one-frame cache: the stream's second call
        expected = stock(x, cache_x)
        got = faster(x, cache_x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= 1e-5
        (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
        (got_grad,) = torch.autograd.grad(got.square().sum(), x)
        assert (got_grad - expected_grad).abs().max() <= 1e-4


@pytest.mark.parametrize("channel_first, dtype", [(True, torch.float32), (False, torch.float32), (True, torch.bfloat16)])
def test_sum_of_squares_norm_equals_the_stock_one(channel_first, dtype):
    torch.manual_seed(0)
    stock = WanRMS_norm(8, channel_first=channel_first, images=False)
    stock.gamma.data.uniform_(0.5, 1.5)
    faster = faster_copy(stock)
    assert isinstance(faster, SumOfSquaresRMSNorm)
    x = torch.randn(2, 8, 3, 5, 5) if channel_first else torch.randn(2, 3, 5, 5, 8)
    x = x.to(dtype)
    x[0, ..., 0] = 0  # an all-zero vector stays zero rather than dividing by zero
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    assert (faster(x).float() - stock(x).float()).abs().max() <= tolerance


def test_video_codecs_use_them_after_loading(tmp_path):
    VideoCodec(**{**TINY_VIDEO, "decoder_base_dim": 12}).save_pretrained(tmp_path)
    codec = VideoCodec.from_pretrained(tmp_path)
    assert codec.config.decoder_base_dim == 12  # the config survives the constructor that switches the kernels
    kinds = {type(module) for module in codec.modules()}
    assert TimeTapConv3d in kinds and SumOfSquaresRMSNorm in kinds
    assert WanCausalConv3d not in kinds and WanRMS_norm not in kinds


def test_a_changed_weight_is_never_served_from_the_cache():
    torch.manual_seed(0)
    stock = WanCausalConv3d(4, 3, (3, 3, 3), padding=1)
    faster = faster_copy(stock)
    x = torch.randn(1, 4, 3, 6, 6)
    with torch.no_grad():
        faster(x)
        for conv in (stock, faster):
            conv.weight.mul_(-2.0)  # an optimizer step, in place
        assert (faster(x) - stock(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("first_chunk", [False, True])
def test_channels_last_shortcut_equals_the_stock_one(first_chunk):
    torch.manual_seed(0)
    stock = DupUp3D(8, 4, factor_t=2, factor_s=2)
    faster = faster_copy(stock)
    assert isinstance(faster, ChannelsLastDupUp3D)
    x = torch.randn(1, 8, 3, 5, 6)
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        got = faster(x.contiguous(memory_format=layout), first_chunk=first_chunk)
        assert torch.equal(got, stock(x, first_chunk=first_chunk))
        assert got.is_contiguous(memory_format=torch.channels_last_3d)


def test_channels_last_upsample_equals_the_stock_one():
    stock = WanUpsample(scale_factor=(2.0, 2.0), mode="nearest-exact")
    faster = faster_copy(stock)
    assert isinstance(faster, ChannelsLastUpsample)
    x = torch.randn(3, 4, 5, 6, dtype=torch.bfloat16)
    got = faster(x)
    assert torch.equal(got, stock(x)) and got.dtype == torch.bfloat16
    assert got.is_contiguous(memory_format=torch.channels_last)


def stock_copy(codec: VideoCodec) -> VideoCodec:
    stock = copy.deepcopy(codec)
    diffusers_class = {faster: original for original, faster in FASTER.items()}
    for module in stock.modules():
        module.__class__ = diffusers_class.get(type(module), type(module))
    return stock


def test_streaming_decode_equals_the_stock_layers_and_stays_channels_last():
    torch.manual_seed(0)
    codec = VideoCodec(**TINY_VIDEO).eval()
    stock = stock_copy(codec)
    assert not any(type(m) in FASTER.values() for m in stock.modules())
    latents = torch.randn(1, 8, 4, 4, 4)
    layouts = {}

    def record(name):
        def hook(conv, args):
            layout = torch.channels_last if args[0].dim() == 4 else torch.channels_last_3d
            layouts[name] = layouts.get(name, True) and args[0].is_contiguous(memory_format=layout)

        return hook

    # past the middle block (latent resolution, where the time goes is not), every convolution reads channels-last
    for name, conv in codec.decoder.named_modules():
        if isinstance(conv, (torch.nn.Conv2d, torch.nn.Conv3d)) and name.startswith("up_blocks"):
            conv.register_forward_pre_hook(record(name))
    with torch.no_grad():
        streams = codec.stream(), stock.stream()
        got = torch.cat([streams[0].decode(latents[:, :, i : i + 1]) for i in range(4)], dim=2)
        expected = torch.cat([streams[1].decode(latents[:, :, i : i + 1]) for i in range(4)], dim=2)
    assert (got - expected).abs().max() <= 1e-5
    assert layouts and all(layouts.values()), layouts
