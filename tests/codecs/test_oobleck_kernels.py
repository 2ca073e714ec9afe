import copy

import torch
from diffusers.models.autoencoders.autoencoder_oobleck import Snake1d
from torch import nn

from avgen.codecs.audio import AudioCodec
from avgen.codecs.oobleck_kernels import CachedSnake1d, PointwiseConv1d, use_faster_kernels
from avgen.codecs.presets import TINY_AUDIO


def test_pointwise_convolution_equals_the_stock_one_with_gradients():
    torch.manual_seed(0)
    for bias in (True, False):
        stock = nn.Conv1d(6, 5, 1, bias=bias)
        faster = copy.deepcopy(stock)
        use_faster_kernels(faster)
        assert isinstance(faster, PointwiseConv1d)
        x = torch.randn(2, 6, 37, requires_grad=True)
        expected, got = stock(x), faster(x)
        assert got.shape == expected.shape and (got - expected).abs().max() <= 1e-6
        (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
        (got_grad,) = torch.autograd.grad(got.square().sum(), x)
        assert (got_grad - expected_grad).abs().max() <= 1e-5


def test_wider_kernels_keep_the_stock_class():
    conv = nn.Conv1d(4, 4, 7)
    use_faster_kernels(conv)
    assert type(conv) is nn.Conv1d


def test_cached_snake_equals_the_stock_one_and_follows_a_changed_parameter():
    torch.manual_seed(0)
    stock = Snake1d(4)
    stock.alpha.data.uniform_(-1, 1)
    stock.beta.data.uniform_(-1, 1)
    faster = copy.deepcopy(stock)
    use_faster_kernels(faster)
    assert isinstance(faster, CachedSnake1d)
    x = torch.randn(2, 4, 50)
    with torch.no_grad():
        assert (faster(x) - stock(x)).abs().max() <= 1e-6
        for snake in (stock, faster):
            snake.alpha.mul_(-2.0)  # an optimizer step, in place
        assert (faster(x) - stock(x)).abs().max() <= 1e-6


def test_streaming_audio_decode_equals_the_stock_layers():
    codec, stock = (AudioCodec(**TINY_AUDIO).eval() for _ in range(2))
    stock.load_state_dict(codec.state_dict())  # a weight-normed module cannot be deep-copied
    kinds = {type(m) for m in codec.modules()}
    assert PointwiseConv1d in kinds and CachedSnake1d in kinds
    for module in stock.modules():
        module.__class__ = {PointwiseConv1d: nn.Conv1d, CachedSnake1d: Snake1d}.get(type(module), type(module))
    latents = torch.randn(1, 8, 24)
    with torch.no_grad():
        streams = codec.stream(), stock.stream()
        got = torch.cat([streams[0].decode(latents[:, :, i : i + 8]) for i in range(0, 24, 8)], dim=-1)
        expected = torch.cat([streams[1].decode(latents[:, :, i : i + 8]) for i in range(0, 24, 8)], dim=-1)
    assert (got - expected).abs().max() <= 1e-5
