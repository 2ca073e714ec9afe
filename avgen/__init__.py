"""avgen: streaming, synchronised audio-video generation.

Shape letters used throughout the package:
    B batch, C channels, F (latent) frames, H/W (latent) height/width,
    L video tokens, A audio tokens, Nh heads, Dh head size, S audio samples.
Pixel frames at the media boundary are uint8 (F, H, W, 3); audio is float32
(channels, S) in [-1, 1].
"""

__version__ = "0.1.0"

import importlib

# Components and pipelines by name (diffusers finds pipeline components as attributes of the
# package named in model_index.json); imported on first use so `import avgen` stays light.
_EXPORTS = {
    "AudioCodec": "avgen.codecs.audio",
    "CausalAVTransformer": "avgen.models.transformer",
    "FlowMatchShortcutScheduler": "avgen.scheduler",
    "MutualForcingPipeline": "avgen.pipelines.mutual_forcing",
    "RollingForcingPipeline": "avgen.pipelines.rolling_forcing",
    "SentenceTextEncoder": "avgen.text",
    "VideoCodec": "avgen.codecs.video",
    "WorldTextEncoder": "avgen.text",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'avgen' has no attribute {name!r}")
