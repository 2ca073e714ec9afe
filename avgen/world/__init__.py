"""The synthetic talking-character world: exact ground truth for training and judging models."""

from avgen.world.attributes import (
    BACKGROUNDS,
    EVENTS,
    EYES,
    FACE_COLOURS,
    SHAPES,
    VOCABULARIES,
    VOICES,
    Character,
    is_held_out,
    matching_ids,
    num_characters,
    split_ids,
)
from avgen.world.config import WorldConfig
from avgen.world.prompt import describe, parse_prompt
from avgen.world.clip import Chunk, Clip, FrameTruth, sample_clip

__all__ = [
    "BACKGROUNDS",
    "EVENTS",
    "EYES",
    "FACE_COLOURS",
    "SHAPES",
    "VOCABULARIES",
    "VOICES",
    "Character",
    "Chunk",
    "Clip",
    "FrameTruth",
    "WorldConfig",
    "WorldDataset",
    "describe",
    "is_held_out",
    "matching_ids",
    "num_characters",
    "parse_prompt",
    "sample_clip",
    "split_ids",
]


def __getattr__(name: str):
    # The dataset pulls in torch; import it only when asked for, so the CLI starts fast.
    if name in ("WorldDataset", "default_cache_dir"):
        from avgen.world import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'avgen.world' has no attribute {name!r}")
