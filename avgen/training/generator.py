"""The trained pair: the causal AV transformer and the text encoder it learns with.

A checkpoint, a run's export and a pipeline folder all hold these two as the subfolders
transformer/ and text_encoder/, so each stage can start from any of them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avgen.models.presets import preset_config
from avgen.models.transformer import CausalAVTransformer
from avgen.text import (
    TEXT_ENCODERS,
    SentenceTextEncoder,
    WorldTextEncoder,
    encode_prompts,
    is_trained_by_avgen,
    load_text_encoder,
)
from avgen.training.config import ConfigError

SUBFOLDERS = ("transformer", "text_encoder")


class Generator(nn.Module):
    def __init__(self, transformer: CausalAVTransformer, text_encoder: WorldTextEncoder | SentenceTextEncoder):
        super().__init__()
        self.transformer = transformer
        self.text_encoder = text_encoder

    @classmethod
    def from_preset(cls, preset: str, text_encoder: str = "world") -> Generator:
        """A fresh generator of a preset's size with a fresh text encoder ("world" or "sentence")."""
        transformer = CausalAVTransformer.from_preset(preset)
        return cls(transformer, TEXT_ENCODERS[text_encoder](dim=transformer.config.text_dim))

    @classmethod
    def from_folder(cls, folder: str | Path, preset: str | None = None, new_text_encoder: str | None = None) -> Generator:
        """Load transformer/ and text_encoder/ from a checkpoint or pipeline folder.

        A text encoder avgen does not train (the umT5 of a converted folder) is replaced by a
        fresh `new_text_encoder` ("world" or "sentence") when one is named, else refused.
        """
        folder = Path(folder)
        for name in SUBFOLDERS:
            if not (folder / name / "config.json").is_file():
                raise ConfigError(f"{str(folder)!r} has no {name}/: give a run folder, a checkpoint or a pipeline folder")
        transformer = CausalAVTransformer.from_pretrained(folder / "transformer")
        if new_text_encoder is not None and not is_trained_by_avgen(folder / "text_encoder"):
            text_encoder = TEXT_ENCODERS[new_text_encoder](dim=transformer.config.text_dim)
        else:
            text_encoder = load_text_encoder(folder / "text_encoder")
        generator = cls(transformer, text_encoder)
        if preset is not None:
            generator.check_preset(preset, str(folder))
        return generator

    @classmethod
    def like(cls, other: Generator, state_dict: dict) -> Generator:
        """A plain (unsharded) copy of `other`'s architecture holding `state_dict`."""
        copy = cls(CausalAVTransformer.from_config(other.transformer.config), type(other.text_encoder).from_config(other.text_encoder.config))
        copy.load_state_dict(state_dict)
        return copy

    def check_preset(self, preset: str, source: str) -> None:
        """A checkpoint of another size is an error that names both sizes, not a shape mismatch deep in torch."""
        expected = preset_config(preset)
        got = self.transformer.config
        keys = ("video_dim", "audio_dim", "num_layers", "video_in_channels", "audio_in_channels", "text_dim", "chunk_frames")
        different = [key for key in keys if expected[key] != got[key]]
        if different:
            key = different[0]
            raise ConfigError(
                f"checkpoint {source!r} does not fit preset {preset!r}: {key} is {got[key]}, the preset has {expected[key]}"
            )

    def train_text_path_only(self) -> None:
        """Freeze everything but what turns text into the text attention's keys and values: the text
        encoder, each tower's text embedder and every block's text key/value projections."""
        self.requires_grad_(False)
        self.text_encoder.requires_grad_(True)
        for tower in self.transformer.towers.values():
            tower.condition_embedder.text_embedder.requires_grad_(True)
            for block in tower.blocks:
                for module in (block.attn2.to_k, block.attn2.to_v, block.attn2.norm_k):
                    module.requires_grad_(True)

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, Lt, text_dim) prompt embeddings (with gradient to the text encoder)."""
        return encode_prompts(self.text_encoder, None, prompts, self.transformer.device, self.transformer.dtype)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.transformer.save_pretrained(folder / "transformer")
        self.text_encoder.save_pretrained(folder / "text_encoder")
