"""What a user typed or uploaded, checked: every mistake becomes a one-line ValueError saying what to do.

Prompt words are checked later, by the pipeline's text encoder, when the stream starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seconds: float | None  # None: until stopped
    mode: str
    seed: int
    image: np.ndarray | None  # reference character, (H, W, 3) uint8 at the model's frame size
    video: str | None = None  # a video file to voice (dubbing); its length is the generation's


def parse_request(
    prompt, image_path, seconds, until_stopped: bool, mode, seed, video_path=None, *, modes, max_seconds: float,
    frame_size: tuple[int, int],
) -> GenerationRequest:
    """The page's inputs as a GenerationRequest, or a ValueError naming the first bad one.

    With a video to voice, the length is the video's: `seconds` and `until_stopped` are not read.
    """  # fmt: skip
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(modes)}")
    if video_path is not None and image_path is not None:
        raise ValueError("give a reference image or a video to voice, not both: the video's frames are the picture")
    return GenerationRequest(
        prompt=check_prompt(prompt),
        seconds=None if until_stopped or video_path is not None else check_seconds(seconds, max_seconds),
        mode=mode,
        seed=check_seed(seed),
        image=None if image_path is None else load_reference(image_path, frame_size),
        video=None if video_path is None else str(video_path),
    )


def check_prompt(prompt) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: describe the character, or pick one of the examples")
    return prompt.strip()


def check_seconds(seconds, max_seconds: float) -> float:
    if seconds is None:
        raise ValueError(f"give a length in seconds (up to {max_seconds:g}), or tick 'until stopped'")
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"length must be a number of seconds, got {seconds!r}") from None
    if not (math.isfinite(value) and 0 < value <= max_seconds):
        raise ValueError(f"length must be more than 0 and at most {max_seconds:g} seconds, got {value:g}")
    return value


def check_seed(seed) -> int:
    if seed is None:
        return 0
    if isinstance(seed, float) and not seed.is_integer():  # the page's number box sends floats
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
    return value


def load_reference(path, frame_size: tuple[int, int]) -> np.ndarray:
    """The uploaded image at `path` as the model's first frame: (H, W, 3) uint8, centre-cropped and downscaled.

    Images smaller than the frame are refused rather than upscaled into a blur the model never saw.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    height, width = frame_size
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # phone photos store their rotation apart from the pixels
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        kind = "too large" if isinstance(error, Image.DecompressionBombError) else "not an image"
        raise ValueError(f"the reference file is {kind}: upload a PNG or JPEG picture of a character") from None
    if image.width < width or image.height < height:
        raise ValueError(f"the reference image is {image.width}x{image.height} pixels; it must be at least {width}x{height}")
    image = ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)  # (H, W, 3)
