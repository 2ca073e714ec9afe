"""Rotary position embeddings on one time axis shared by video and audio.

Positions are in video latent frames: video token (f, y, x) sits at time f, audio latent
j at time j / audio_latents_per_frame. The video tower follows Wan's 3-D split of the head
(time, height, width: the last two get 2 * (Dh // 6) channels each, time the rest) and its
interleaved-pair rotation, so Wan weights see exactly the angles they were trained with.
Audio and cross-modal attention rotate the whole head by time alone. Angles are computed
from positions (not looked up), in float64, so fractional audio times are exact; a
position past `max_position` is an error rather than a silent extrapolation.
"""

from __future__ import annotations

import torch


def inverse_frequencies(dim: int, theta: float, device: torch.device | None = None) -> torch.Tensor:
    """(dim // 2,) float64 rotation speeds of the channel pairs of a `dim`-wide rotary band."""
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=device)[: dim // 2] / dim)


def check_positions(last: float, max_position: int) -> None:
    """Raise when the latest position of a forward, `last` (latent frames), is past the table.

    Checked on a number the caller knows, not on a device tensor, so a forward never waits for the GPU.
    """
    if last >= max_position:
        raise ValueError(
            f"rotary time position {last:g} is past the model's table of {max_position} latent frames; "
            "use a KVCache with sink + window chunks so positions are re-based"
        )


def video_angles(time: torch.Tensor, height: int, width: int, head_dim: int, theta: float) -> torch.Tensor:
    """Rotation angles of video tokens laid out (time, y, x), (len(time) * height * width, head_dim // 2) float64.

    Args:
        time: (F,) time position of each latent frame.
    """
    spatial = 2 * (head_dim // 6)
    temporal = head_dim - 2 * spatial
    device = time.device
    t = time.double()[:, None] * inverse_frequencies(temporal, theta, device)  # (F, temporal / 2)
    y = torch.arange(height, dtype=torch.float64, device=device)[:, None] * inverse_frequencies(spatial, theta, device)
    x = torch.arange(width, dtype=torch.float64, device=device)[:, None] * inverse_frequencies(spatial, theta, device)
    F_, H, W = len(time), height, width
    angles = torch.cat(
        [
            t[:, None, None].expand(F_, H, W, -1),
            y[None, :, None].expand(F_, H, W, -1),
            x[None, None, :].expand(F_, H, W, -1),
        ],
        dim=-1,
    )
    return angles.reshape(F_ * H * W, head_dim // 2)


def time_angles(time: torch.Tensor, head_dim: int, theta: float) -> torch.Tensor:
    """Rotation angles of tokens at (L,) times over the whole head, (L, head_dim // 2) float64."""
    return time.double()[:, None] * inverse_frequencies(head_dim, theta, time.device)


def time_shift_angles(shift: float, head_dim: int, theta: float, video: bool, device: torch.device | None = None) -> torch.Tensor:
    """(head_dim // 2,) float64 angles that move a rotated key `shift` latent frames later in time.

    Rotations compose by adding angles, so a key rotated at time a and then by these sits at
    a + shift. Video keys move in Wan's time band only (their height and width stay).
    """
    if not video:
        return shift * inverse_frequencies(head_dim, theta, device)
    spatial = 2 * (head_dim // 6)
    temporal = shift * inverse_frequencies(head_dim - 2 * spatial, theta, device)
    return torch.cat([temporal, temporal.new_zeros(spatial)])


def rotation(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 (cos, sin) of (L, Dh / 2) angles, shaped (1, L, 1, Dh / 2) to broadcast over (B, L, Nh, Dh / 2)."""
    return angles.cos().float()[None, :, None], angles.sin().float()[None, :, None]


def rotate(x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of (B, L, Nh, Dh) `x` by a `rotation` (Wan's layout), in fp32."""
    cos, sin = cos_sin
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (B, L, Nh, Dh / 2) each
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    return out.to(x.dtype)
