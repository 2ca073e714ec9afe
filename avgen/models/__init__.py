"""The causal audio-video transformer, its attention backends, rotary positions and KV cache.

Names are imported on first use, so `avgen.models.presets` can be read without loading torch.
"""

import importlib

_EXPORTS = {
    "AVTransformerOutput": "avgen.models.transformer",
    "CausalAVTransformer": "avgen.models.transformer",
    "KVCache": "avgen.models.kv_cache",
    "BACKENDS": "avgen.models.attention",
    "Visibility": "avgen.models.attention",
    "attend": "avgen.models.attention",
    "PRESETS": "avgen.models.presets",
    "preset_config": "avgen.models.presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'avgen.models' has no attribute {name!r}")
