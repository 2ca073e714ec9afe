"""The model behind the app: a pipeline folder, or untrained components of the same sizes.

Both modes of the page run the same loaded components: the fast mode through
RollingForcingPipeline, the quality mode through MutualForcingPipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "weights" / "avgen-tiny"


@dataclass
class AppModel:
    """Loaded pipelines by name ("rolling", "mutual") and where their weights came from."""

    pipelines: dict
    source: str
    trained: bool

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of generated frames: the folder's (avgen-tiny: the world's 64x64)."""
        config = self.pipelines["rolling"].config
        return config.height, config.width


def load_model(
    path: str | Path | None,
    device: str = "cpu",
    dtype: str = "float32",
    untrained: bool = False,
    compile: bool = False,
    vae_dtype: str = "auto",
) -> AppModel:
    """Load `path`, or with None the default folder when it holds a pipeline, else untrained tiny components.

    A folder named explicitly must load: its errors (ValueError) say what is missing.
    `untrained` skips the default folder (tests and benchmarks do not depend on training).
    `compile`: the transformer's stages through torch.compile (both pipelines share it).
    `vae_dtype`: the video codec's, see avgen.codecs.precision.
    """
    from avgen.codecs.precision import cast_codec, codec_dtype
    from avgen.pipelines.benchmark import random_tiny_pipeline
    from avgen.pipelines.loading import load_pipeline
    from avgen.pipelines.mutual_forcing import MutualForcingPipeline

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use a torch dtype name such as float32 or bfloat16")
    if path is None and not untrained and (DEFAULT_MODEL / "model_index.json").is_file():
        path = DEFAULT_MODEL
    if path is None:
        rolling, source, trained = random_tiny_pipeline("rolling"), "untrained tiny components", False
    else:
        rolling, source, trained = load_pipeline(path, "rolling"), str(path), True
    rolling.to(device=device)
    if torch_dtype != rolling.transformer.dtype:  # diffusers warns about any cast, even a needless one
        rolling.to(dtype=torch_dtype)
    cast_codec(rolling.vae, codec_dtype(vae_dtype, device))
    rolling.set_progress_bar_config(disable=True)
    if compile:
        rolling.transformer.compile()
    rolling.warm_up()  # the first generation then starts as fast as the later ones (and compiles nothing)
    # The folder's sampling defaults (a converted checkpoint's cache layout and budgets) go along.
    defaults = {key: value for key, value in rolling.config.items() if not key.startswith("_") and key not in rolling.components}
    mutual = MutualForcingPipeline(**rolling.components, **{**defaults, "window": None})
    mutual.set_progress_bar_config(disable=True)
    return AppModel(pipelines={"rolling": rolling, "mutual": mutual}, source=source, trained=trained)
