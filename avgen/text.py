"""Text encoders: the small world-vocabulary encoder avgen-tiny ships, and umT5 through transformers.

`WorldTextEncoder` knows every word the world's prompts use (all phrasings, attributes and
events), works offline and is trained with the generator. `encode_prompts` is the one entry
point the pipelines call; it also accepts a transformers encoder + tokenizer (umT5, as in
Wan), in which case padded positions are zeroed as Wan does.
"""

from __future__ import annotations

import itertools
import re

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

PAD, NULL = "<pad>", "<null>"  # padding, and the single token of the empty (unconditional) prompt
WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def world_vocabulary() -> list[str]:
    """Every word of every world prompt, sorted, after the two special tokens."""
    from avgen.world.attributes import EVENTS, VOCABULARIES, Character
    from avgen.world.prompt import EVENT_CLAUSES, EVENT_WORDS, TEMPLATES, describe

    found = set()
    base = {name: values[0] for name, values in VOCABULARIES.items()}
    for name, values in VOCABULARIES.items():
        for value in values:  # every attribute value, in every phrasing, with every event clause
            character = Character(**{**base, name: value})
            for phrasing, events in itertools.product(range(len(TEMPLATES)), EVENT_CLAUSES):
                found.update(words(describe(character, events, phrasing)))
    for event in EVENTS:
        found.update(EVENT_WORDS[event])
    return [PAD, NULL, *sorted(found)]


class WorldTextEncoder(ModelMixin, ConfigMixin):
    """Word embeddings + a small transformer encoder over the world's vocabulary.

    Args:
        vocabulary: tokens; index 0 must be the padding token.
        dim: output channels (the transformer's text_dim).
    """

    @register_to_config
    def __init__(
        self,
        vocabulary: list[str] | None = None,
        dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        max_length: int = 48,
    ):
        super().__init__()
        vocabulary = vocabulary or world_vocabulary()
        if vocabulary[0] != PAD:
            raise ValueError(f"vocabulary[0] must be {PAD!r}")
        self.register_to_config(vocabulary=vocabulary)
        self._index = {word: i for i, word in enumerate(vocabulary)}
        self.token_embedding = nn.Embedding(len(vocabulary), dim, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, dim)
        layer = nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_length) token ids, padded with 0; the empty prompt is the single NULL token.

        Always padding to max_length (as Wan pads umT5 to 512) makes a prompt's embedding
        independent of the other prompts in its batch.
        """
        rows = []
        for prompt in prompts:
            tokens = words(prompt) or [NULL]
            unknown = sorted({word for word in tokens if word not in self._index})
            if unknown:
                raise ValueError(
                    f"unknown words in prompt: {', '.join(unknown)}; this text encoder knows the world's words "
                    "(shapes, colours, eyes, backgrounds, voices, jumps and chimes)"
                )
            if len(tokens) > self.config.max_length:
                raise ValueError(f"prompt has {len(tokens)} words; at most {self.config.max_length} fit")
            rows.append([self._index[word] for word in tokens])
        length = self.config.max_length
        return torch.tensor([row + [0] * (length - len(row)) for row in rows], device=self.device)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, dim) embeddings, zero at padding."""
        padding = token_ids == 0
        positions = torch.arange(token_ids.shape[1], device=token_ids.device)
        hidden = self.token_embedding(token_ids) + self.position_embedding(positions)[None]
        hidden = self.norm(self.encoder(hidden, src_key_padding_mask=padding))
        return hidden.masked_fill(padding[..., None], 0.0)


def encode_prompts(text_encoder, tokenizer, prompts: list[str], device, dtype, max_length: int = 512) -> torch.Tensor:
    """(B, L, text_dim) embeddings of `prompts` with either kind of encoder.

    `max_length`: tokens of a transformers encoder's output (Wan's umT5: 512).
    """
    if isinstance(text_encoder, WorldTextEncoder):
        embeddings = text_encoder(text_encoder.tokenize(prompts))
    else:  # a transformers encoder (umT5) with its tokenizer, as in Wan: max_length tokens, padding zeroed
        inputs = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        mask = inputs.attention_mask.to(text_encoder.device)
        embeddings = text_encoder(inputs.input_ids.to(text_encoder.device), mask).last_hidden_state
        embeddings = embeddings * mask[..., None]
    return embeddings.to(device=device, dtype=dtype)
