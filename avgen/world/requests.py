"""What a model of the world cannot show of a prompt, said in one line.

The world's characters come from fixed vocabularies (avgen/world/attributes.py), but a prompt
can ask for more: a background colour the world never shows (purple is a face colour here, not
a background), a face colour only backgrounds have, eye styles, face shapes or voices it does
not know. A model trained on the world still generates from such a prompt, showing whatever
its nearest character is, so the caller is told which parts it cannot do and what it can.

A request is a descriptive word next to the noun it describes ("purple backdrop", "mint
skin", "blue eyes", "robotic voice"); descriptive words are the world's own and a list of
common ones for each kind, so ordinary words ("little", "cheerful") are never flagged.
"""

from __future__ import annotations

import re

from avgen.world.attributes import BACKGROUNDS, EYES, FACE_COLOURS, SHAPES, VOICES

COLOURS = frozenset(
    {*FACE_COLOURS, *BACKGROUNDS, "black", "white", "gold", "golden", "silver", "teal", "cyan", "magenta", "violet",
     "indigo", "turquoise", "crimson", "maroon", "beige", "olive", "lime", "peach", "cream", "tan", "gray", "navy-blue",
     "light-blue", "dark-blue", "dark", "light"}
)  # fmt: skip
SHAPE_WORDS = frozenset({*SHAPES, "triangle", "triangular", "star", "heart", "hexagon", "hexagonal", "rectangle", "rectangular", "circle", "circular", "pear"})
EYE_WORDS = frozenset({*EYES, *COLOURS, "big", "small", "tiny", "closed", "wide", "angry", "cat", "star", "heart", "cartoon", "sparkly"})
VOICE_WORDS = frozenset({*VOICES, "high", "low", "robotic", "raspy", "husky", "gravelly", "booming", "whispery", "loud", "quiet", "shrill", "calm"})

# (what the world knows of it, the nouns that name it, the words that describe it, how far before
# the noun they stand, what the world has); "a green square head" puts colour and shape two words back.
REQUESTS = (
    ("backgrounds", ("background", "backdrop", "wall", "backgrounds"), COLOURS, 1, tuple(BACKGROUNDS)),
    ("face colours", ("face", "head", "skin", "character", "fellow", "guy", "creature"), COLOURS, 2, tuple(FACE_COLOURS)),
    ("face shapes", ("face", "head", "character", "fellow", "guy", "creature"), SHAPE_WORDS, 2, SHAPES),
    ("eye styles", ("eyes", "eye"), EYE_WORDS, 1, EYES),
    ("voices", ("voice",), VOICE_WORDS, 1, tuple(VOICES)),
)
TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|[,;:.!?()]")  # words, and the punctuation a description stops at


def unsupported_requests(prompt: str) -> str | None:
    """One line naming what of `prompt` the world cannot show and what it can; None when all of it can be shown.

    e.g. "this model cannot show purple backdrop (backgrounds it knows: grey, sky-blue, mint,
    lavender, sand, navy); it generates anyway"
    """
    tokens = TOKEN.findall(prompt.lower())
    unknown: dict[str, tuple[list[str], tuple[str, ...]]] = {}
    for index, word in enumerate(tokens):
        for kind, nouns, describing, reach, known in REQUESTS:
            if word not in nouns:
                continue
            for before in reversed(tokens[max(0, index - reach) : index]):
                if not before[0].isalpha():
                    break
                if before in describing and before not in known:
                    asked = unknown.setdefault(kind, ([], known))[0]
                    if f"{before} {word}" not in asked:
                        asked.append(f"{before} {word}")
    if not unknown:
        return None
    parts = [f"{' and '.join(asked)} ({kind} it knows: {', '.join(known)})" for kind, (asked, known) in unknown.items()]
    return f"this model cannot show {'; '.join(parts)}; it generates anyway"
