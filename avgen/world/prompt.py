"""Text prompts of world clips: describe a character and its events, and read them back.

Every prompt names all five attributes and the clip's events; the phrasing varies so a
text encoder must learn the words, not one sentence pattern. `parse_prompt` finds the
attribute words in any text, so metrics can judge a generated clip against its prompt.
"""

from __future__ import annotations

import re

from avgen.world.attributes import VOCABULARIES, Character

EYE_PHRASES = {"dot": "dot eyes", "googly": "googly eyes", "sleepy": "sleepy eyes", "glasses": "glasses"}

TEMPLATES = (
    "A {colour} {shape} face with {eyes} talks in a {voice} voice on a {background} background{events}.",
    "On a {background} background, a {shape} {colour} character with {eyes} speaks in a {voice} voice{events}.",
    "{colour} {shape} head, {eyes}, {voice} voice, {background} backdrop{events}.",
    "A talking {shape} face, {colour}, with {eyes}, in front of a {background} wall; its voice is {voice}{events}.",
)

EVENT_CLAUSES = {
    frozenset(): "",
    frozenset({"jump"}): "; now and then it hops and lands with a thud",
    frozenset({"chime"}): "; now and then a chime rings and sparkles appear",
    frozenset({"jump", "chime"}): "; now and then it hops and lands with a thud, and a chime rings with sparkles",
}

# Words that reveal an event in free text.
EVENT_WORDS = {"jump": ("hop", "hops", "jump", "jumps", "thud"), "chime": ("chime", "chimes", "sparkle", "sparkles")}


def describe(character: Character, events: frozenset[str] = frozenset(), phrasing: int = 0) -> str:
    """Prompt for a character and its events; `phrasing` picks one of the templates (mod their count)."""
    text = TEMPLATES[phrasing % len(TEMPLATES)].format(
        colour=character.face_colour,
        shape=character.shape,
        eyes=EYE_PHRASES[character.eyes],
        voice=character.voice,
        background=character.background,
        events=EVENT_CLAUSES[frozenset(events)],
    )
    return text[0].upper() + text[1:]


def parse_prompt(prompt: str) -> tuple[dict[str, str], frozenset[str]]:
    """Attributes named in `prompt` (a subset of shape, face_colour, eyes, background, voice) and its events.

    The first word of each vocabulary wins; words outside the vocabularies are ignored.
    """
    words = re.findall(r"[a-z]+(?:-[a-z]+)*", prompt.lower())
    attributes = {}
    for name, vocabulary in VOCABULARIES.items():
        found = next((word for word in words if word in vocabulary), None)
        if found is not None:
            attributes[name] = found
    events = frozenset(event for event, cues in EVENT_WORDS.items() if any(word in cues for word in words))
    return attributes, events
