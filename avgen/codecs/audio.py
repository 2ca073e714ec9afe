"""Audio codec: diffusers' Oobleck waveform VAE made causal, with chunk-by-chunk streaming.

`AudioCodec` is an `AutoencoderOobleck` (Stable Audio's waveform VAE: Snake activations,
weight-normalised convolutions, strided down/up-sampling; same parameter names) whose
convolutions are made causal by forward hooks, without touching the weights:
  * a Conv1d pads only on the left, by dilation * (kernel - 1) - (stride - 1), so output
    step t sees input up to the end of step t and never beyond;
  * a ConvTranspose1d runs unpadded and keeps the first `stride * L` samples; the overlap it
    would add to the next block is carried over as state when streaming.
A `stream()` then keeps, per convolution, the last input samples it needs (or the
overlap it owes), so decoding latents chunk by chunk gives the samples of decoding them at
once, and likewise for encoding.

Latents are normalised per channel with the config's latents_mean / latents_std. With the
default ratios (2, 5, 5, 10) one latent covers 500 samples: 32 latents per second at 16 kHz,
8 per latent frame of the 4x-compressed 16 fps video.

Layouts: audio (B, audio_channels, S) in [-1, 1], S a multiple of the hop; latents
(B, decoder_input_channels, S / hop).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers import AutoencoderOobleck
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  diffusers' pipeline loader looks the base class up here
from torch import nn
from torch.nn.utils.weight_norm import WeightNorm

from avgen.codecs.oobleck_kernels import use_faster_kernels


class AudioCodec(AutoencoderOobleck):
    @register_to_config
    def __init__(
        self,
        encoder_hidden_size: int = 16,
        downsampling_ratios: list[int] = [2, 5, 5, 10],
        channel_multiples: list[int] = [1, 2, 4, 8],
        decoder_channels: int = 32,
        decoder_input_channels: int = 8,
        audio_channels: int = 1,
        sampling_rate: int = 16000,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
    ):
        super().__init__(
            encoder_hidden_size=encoder_hidden_size,
            downsampling_ratios=downsampling_ratios,
            channel_multiples=channel_multiples,
            decoder_channels=decoder_channels,
            decoder_input_channels=decoder_input_channels,
            audio_channels=audio_channels,
            sampling_rate=sampling_rate,
        )
        self._state: dict[nn.Module, torch.Tensor] | None = None  # set while a stream runs
        for module in self.modules():
            for hook in module._forward_pre_hooks.values():
                if type(hook) is WeightNorm:
                    hook.__class__ = CachedWeightNorm
            if isinstance(module, nn.ConvTranspose1d):
                module.padding = (0,)
                module.register_forward_hook(self._crop_transposed)
            elif isinstance(module, nn.Conv1d):
                module.padding = (0,)
                module.register_forward_pre_hook(self._pad_left)
        use_faster_kernels(self)

    # ------------------------------------------------------------------ causal convolutions

    def _pad_left(self, conv: nn.Conv1d, args):
        (x,) = args
        left = conv.dilation[0] * (conv.kernel_size[0] - 1) - (conv.stride[0] - 1)
        if left <= 0:
            return None
        if self._state is None:
            return (F.pad(x, (left, 0)),)
        history = self._state.get(conv)
        if history is None:
            history = x.new_zeros(*x.shape[:-1], left)
        padded = torch.cat([history, x], dim=-1)
        # Keep what the next chunk needs; a strided conv consumes its input in whole strides.
        self._state[conv] = padded[..., padded.shape[-1] - left :]
        return (padded,)

    def _crop_transposed(self, conv: nn.ConvTranspose1d, args, output: torch.Tensor):
        (x,) = args
        length = x.shape[-1] * conv.stride[0]
        if self._state is None:
            return output[..., :length]
        owed = self._state.get(conv)
        if owed is not None:
            output = torch.cat([output[..., : owed.shape[-1]] + owed, output[..., owed.shape[-1] :]], dim=-1)
        tail = output[..., length:]
        if conv.bias is not None:  # the next chunk's own output already carries the bias once
            tail = tail - conv.bias[:, None]
        self._state[conv] = tail
        return output[..., :length]

    @contextmanager
    def _streaming(self, state: dict):
        self._state = state
        try:
            yield
        finally:
            self._state = None

    # ------------------------------------------------------------------ public API

    def _normalisation(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channels = self.config.decoder_input_channels
        mean = self.config.latents_mean or [0.0] * channels
        std = self.config.latents_std or [1.0] * channels
        as_tensor = lambda values: torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1)  # noqa: E731
        return as_tensor(mean), as_tensor(std)

    def check_audio(self, audio: torch.Tensor) -> None:
        if audio.ndim != 3 or audio.shape[1] != self.config.audio_channels:
            raise ValueError(f"audio must be (B, {self.config.audio_channels}, S) in [-1, 1], got {tuple(audio.shape)}")

    def check_latents(self, latents: torch.Tensor) -> None:
        channels = self.config.decoder_input_channels
        if latents.ndim != 3 or latents.shape[1] != channels:
            raise ValueError(f"audio latents must be (B, {channels}, T), got {tuple(latents.shape)}")

    def encode_latents(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, S) in [-1, 1], S a multiple of the hop -> normalised latents (B, D, S / hop)."""
        self.check_audio(audio)
        if audio.shape[-1] % self.hop_length:
            raise ValueError(f"a whole clip must have a multiple of {self.hop_length} samples, got {audio.shape[-1]}")
        return self.stream().encode(audio)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, D, T) -> audio (B, C, T * hop)."""
        return self.stream().decode(latents)

    def stream(self) -> AudioStream:
        return AudioStream(self)


class CachedWeightNorm(WeightNorm):
    """Oobleck's weight norm (weight = g * v / |v|), recomputed only when g or v changed while no
    gradient is taken: streaming calls every convolution once per chunk, and recomputing its
    weight there was a tenth of the decode time."""

    def compute_weight(self, module: nn.Module) -> torch.Tensor:
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        if torch.is_grad_enabled():
            return super().compute_weight(module)
        key = (g._version, v._version, g.data_ptr(), v.data_ptr(), g.dtype, torch.is_inference_mode_enabled())
        if getattr(self, "_key", None) != key:
            self._key, self._weight = key, super().compute_weight(module)
        return self._weight


class AudioStream:
    """Chunk-by-chunk encoding and decoding with every causal convolution's state kept between calls.

    Encoding takes samples as they come and returns the latents they complete (leftover
    samples wait for the next call); decoding takes any number of latents per call.
    """

    def __init__(self, codec: AudioCodec):
        self.codec = codec
        self._encoder_state: dict = {}
        self._decoder_state: dict = {}
        self._pending: torch.Tensor | None = None

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, n) samples -> the normalised latents they complete, (B, D, m)."""
        codec = self.codec
        codec.check_audio(audio)
        if self._pending is not None:
            audio = torch.cat([self._pending, audio], dim=-1)
        usable = audio.shape[-1] // codec.hop_length * codec.hop_length
        self._pending = audio[..., usable:] if usable < audio.shape[-1] else None
        if usable == 0:
            return audio.new_zeros(audio.shape[0], codec.config.decoder_input_channels, 0)
        with torch.no_grad(), codec._streaming(self._encoder_state):
            moments = codec.encoder(audio[..., :usable])  # (B, 2 D, m)
        mean, std = codec._normalisation(moments)
        return (moments[:, : codec.config.decoder_input_channels] - mean) / std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, D, m) -> samples (B, C, m * hop)."""
        codec = self.codec
        codec.check_latents(latents)
        mean, std = codec._normalisation(latents)
        with torch.no_grad(), codec._streaming(self._decoder_state):
            return codec.decoder(latents * std + mean)
