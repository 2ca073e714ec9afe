"""Video codec: diffusers' causal Wan VAE, with normalised latents and chunk-by-chunk streaming.

`VideoCodec` *is* an `AutoencoderKLWan` (same config, same weights, so real Wan2.1 VAE
folders in diffusers format load into it) with three additions:
  * `encode_latents` / `decode_latents`: whole clips to normalised latents and back,
    latents = (posterior mean - latents_mean) / latents_std, per channel;
  * `stream()`: a `VideoStream` that encodes frames or decodes latent frames as they come,
    keeping the causal convolutions' cache between calls, so chunked results equal whole ones;
  * shape checks that name the expected shape.

Layouts: video (B, 3, F, H, W) in [-1, 1] with F = 1 + 4k (the first latent frame covers one
pixel frame, every later one four); latents (B, z_dim, 1 + k, H / 8, W / 8).
"""

from __future__ import annotations

import inspect

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  diffusers' pipeline loader looks the base class up here

from avgen.codecs.wan_kernels import use_faster_kernels


class VideoCodec(AutoencoderKLWan):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        use_faster_kernels(self)

    # diffusers reads a model's config keys from its constructor's signature
    __init__.__signature__ = inspect.signature(AutoencoderKLWan.__init__)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.config.temperal_downsample)

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.config.dim_mult) - 1)

    def _normalisation(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.config.latents_mean, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(self.config.latents_std, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
        return mean, std

    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1 + 4k, H, W) in [-1, 1] -> normalised latents (B, z_dim, 1 + k, H/8, W/8)."""
        self.check_video(video)
        t = self.temporal_compression
        if (video.shape[2] - 1) % t:
            raise ValueError(f"a whole clip must have 1 + {t}k frames, got {video.shape[2]}; stream() takes any count")
        with torch.no_grad():
            return self.stream().encode(video)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, z_dim, F', h, w) -> video (B, 3, 1 + 4 (F' - 1), 8h, 8w) in [-1, 1]."""
        with torch.no_grad():
            return self.stream().decode(latents)

    def stream(self) -> VideoStream:
        """A fresh streaming encoder/decoder (independent causal caches for each direction)."""
        if self.config.patch_size is not None:
            raise ValueError("patchified (Wan2.2) VAEs are not supported: use a Wan2.1-style VAE config")
        return VideoStream(self)

    def check_video(self, video: torch.Tensor) -> None:
        s = self.spatial_compression
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(f"video must be (B, {self.config.in_channels}, F, H, W) in [-1, 1], got {tuple(video.shape)}")
        if video.shape[3] % s or video.shape[4] % s:
            raise ValueError(f"video height and width must be multiples of {s}, got {video.shape[3]}x{video.shape[4]}")
        if video.shape[2] == 0:
            raise ValueError("video has no frames")

    def check_latents(self, latents: torch.Tensor) -> None:
        if latents.ndim != 5 or latents.shape[1] != self.config.z_dim:
            raise ValueError(f"video latents must be (B, {self.config.z_dim}, F, h, w), got {tuple(latents.shape)}")
        if latents.shape[2] == 0:
            raise ValueError("video latents have no frames")


class VideoStream:
    """Chunk-by-chunk encoding and decoding with the Wan VAE's causal caches kept between calls.

    Encoding takes frames as they come: the first latent frame is made from the first pixel
    frame, each later one from the next four; frames that do not yet complete a group wait
    for the next call. Decoding takes any number of latent frames per call.
    """

    def __init__(self, codec: VideoCodec):
        self.codec = codec
        self._encoder_cache = [None] * codec._cached_conv_counts["encoder"]
        self._decoder_cache = [None] * codec._cached_conv_counts["decoder"]
        self._pending: torch.Tensor | None = None  # frames waiting to complete a group of four
        self._encoded = 0  # latent frames produced so far
        self._decoded = 0

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, n, H, W) frames in [-1, 1] -> the normalised latent frames they complete, (B, z_dim, m, h, w)."""
        codec = self.codec
        codec.check_video(frames)
        if self._pending is not None:
            frames = torch.cat([self._pending, frames], dim=2)
        groups = []
        start = 0
        while True:
            size = 1 if self._encoded == 0 else codec.temporal_compression
            if frames.shape[2] - start < size:
                break
            out = codec.encoder(frames[:, :, start : start + size], feat_cache=self._encoder_cache, feat_idx=[0])
            groups.append(out)
            start += size
            self._encoded += 1
        self._pending = frames[:, :, start:] if start < frames.shape[2] else None
        if not groups:
            h, w = (n // codec.spatial_compression for n in frames.shape[3:])
            return frames.new_zeros(frames.shape[0], codec.config.z_dim, 0, h, w)
        moments = codec.quant_conv(torch.cat(groups, dim=2))  # (B, 2 z_dim, m, h, w)
        mean_latent = moments[:, : codec.config.z_dim]
        mean, std = codec._normalisation(mean_latent)
        return (mean_latent - mean) / std

    def decode(self, latents: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Normalised latent frames (B, z_dim, m, h, w) -> their pixel frames (B, 3, n, 8h, 8w) in [-1, 1].

        Training passes clamp=False: clamping would stop the gradient wherever the output overshoots.
        """
        codec = self.codec
        codec.check_latents(latents)
        mean, std = codec._normalisation(latents)
        x = codec.post_quant_conv(latents * std + mean)
        frames = []
        for i in range(x.shape[2]):
            frames.append(
                codec.decoder(
                    x[:, :, i : i + 1], feat_cache=self._decoder_cache, feat_idx=[0], first_chunk=self._decoded == 0
                )
            )
            self._decoded += 1
        decoded = torch.cat(frames, dim=2)
        return torch.clamp(decoded, -1.0, 1.0) if clamp else decoded
