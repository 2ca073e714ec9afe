"""Where a video changes over time, as a loss weight.

Lip sync lives in the mouth, a few pixels (a latent position or two) of each frame. An
unweighted reconstruction or flow-matching loss is dominated by the static face and
background, so the mouth is blurred away first and the sync metrics with it. Weighting each
position by 1 + motion_weight * motion(x) puts the loss where the motion is.
"""

import torch


def motion(video: torch.Tensor) -> torch.Tensor:
    """Per-position change from the previous and to the next frame, (B, C, F, H, W) -> (B, 1, F, H, W).

    Works on pixels and on latents alike: the largest absolute change over channels.
    """
    change = (video[:, :, 1:] - video[:, :, :-1]).abs().amax(1, keepdim=True)  # (B, 1, F-1, H, W)
    padding = torch.zeros_like(change[:, :, :1])
    return torch.maximum(torch.cat([padding, change], 2), torch.cat([change, padding], 2))


def motion_loss_weight(video: torch.Tensor, motion_weight: float) -> torch.Tensor:
    """(B, 1, F, H, W) loss weights 1 + motion_weight * motion(video); all ones when motion_weight is 0."""
    if motion_weight == 0:
        return torch.ones_like(video[:, :1])
    return 1 + motion_weight * motion(video)
