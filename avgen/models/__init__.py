"""The causal audio-video transformer, its attention backends, rotary positions and KV cache."""

from avgen.models.attention import BACKENDS, Visibility, attend
from avgen.models.kv_cache import KVCache
from avgen.models.presets import PRESETS, preset_config
from avgen.models.transformer import AVTransformerOutput, CausalAVTransformer

__all__ = [
    "AVTransformerOutput",
    "BACKENDS",
    "CausalAVTransformer",
    "KVCache",
    "PRESETS",
    "Visibility",
    "attend",
    "preset_config",
]
