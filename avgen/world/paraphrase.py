"""Many phrasings of a world prompt for training a sentence encoder, and held-out ones to test it.

The world's own four TEMPLATES (prompt.py) are too few to teach a text encoder that meaning, not
sentence pattern, decides the clip. `paraphrase` builds training prompts from sentence shapes and
synonyms for every word that is not an attribute value. `EVALUATION_TEMPLATES` are written in
other words again (none of their content words occur in the training parts), so a model judged on
them is judged on phrasings it never saw.

Attribute value words appear verbatim and every event is named with one of its EVENT_WORDS, so
`parse_prompt` reads any of these prompts back; no part names something the world cannot show
(see requests.py).
"""

from __future__ import annotations

import random
import re

from avgen.world.attributes import Character
from avgen.world.prompt import EYE_PHRASES, parse_prompt

# Training parts. In SENTENCES, {face}, {eyes}, {place}, {speaks} and {speaking} are filled from
# the synonym lists below, {tone} and {backdrop} are nouns for the voice and the background.
SENTENCES = (
    "a {colour} {shape} {face} with {eyes} {speaks} {place}",
    "{place}, a {shape} {colour} {face} with {eyes} {speaks}",
    "{colour} {shape} {face}, {eyes}, {voice} {tone}, {background} {backdrop}",
    "{shape} {face}, {colour}, with {eyes}, {speaking}, {place}",
    "show a {colour} {shape} {face} with {eyes}, {speaking} {place}",
    "a {shape} {face} coloured {colour}, with {eyes} and a {voice} {tone}, {place}",
    "{voice} {tone}, {eyes}, {shape} {face}, {colour}, {background} {backdrop}",
    "a {face} that is {colour} and {shape}, with {eyes}; it {speaks} {place}",
    "{colour} and {shape}, this {face} has {eyes} and {speaks} {place}",
    "there is a {shape} {colour} {face} {place}; it has {eyes} and {speaks}",
    "make a video of a {colour} {shape} {face} with {eyes} that {speaks} {place}",
    "{background} {backdrop}; {colour} {shape} {face} with {eyes}; {voice} {tone}",
    "{speaking} {place}: a {colour} {shape} {face} with {eyes}",
    "a {shape} {face} in {colour} with {eyes}; its {tone} is {voice}; {place}",
    "show me a {shape} {face}: {colour}, {eyes}, a {voice} {tone}, {place}",
    "a {shape} {face} with {colour} skin and {eyes}, {speaking} {place}",
)
FACES = ("face", "head", "character", "fellow", "creature", "figure", "guy")
BACKDROPS = ("background", "backdrop", "wall")
PLACES = (
    "on a {background} {backdrop}",
    "in front of a {background} {backdrop}",
    "with a {background} {backdrop} behind it",
    "before a {background} {backdrop}",
    "in a {background} scene",
    "with {background} behind it",
)
TONES = ("voice", "tone")
SPEAKS = (
    "talks in a {voice} {tone}",
    "speaks in a {voice} {tone}",
    "chats in a {voice} {tone}",
    "says something in a {voice} {tone}",
    "chatters away with a {voice} {tone}",
)
SPEAKING = (
    "talking in a {voice} {tone}",
    "speaking in a {voice} {tone}",
    "chatting with a {voice} {tone}",
    "saying something in a {voice} {tone}",
)
# Eye wordings: {eyes} is the eye word (dot, googly, sleepy); glasses are worn, not eyes.
EYE_WORDINGS = ("{eyes} eyes", "two {eyes} eyes", "{eyes} peepers")
GLASSES_WORDINGS = ("glasses", "a pair of glasses", "little glasses")
TRAINING_EVENT_CLAUSES = {
    "jump": (
        "it hops",
        "it jumps now and then",
        "it hops and lands with a thud",
        "now and then it jumps",
        "it jumps from time to time",
        "it hops up and down",
    ),
    "chime": (
        "a chime rings",
        "sparkles appear",
        "a chime rings and sparkles appear",
        "now and then a chime sounds",
        "sparkles pop up now and then",
        "chimes ring out",
    ),
}
EVENT_JOINERS = ("; ", ", and ", ". ", " while ")
ENDINGS = (".", ".", ".", "!", "")

# Held-out phrasings: none of their words but attribute, eye, event and function words occur above.
EVALUATION_TEMPLATES = (
    "Our chap is a {colour} {shape} one with {eyes}; it murmurs in a {voice} timbre, set against {background} scenery{events}.",
    "Picture a {shape} chap, {colour} in hue, who gazes through {eyes} and murmurs with a {voice} timbre amid {background} scenery{events}.",
    "Hue: {colour}. Outline: {shape}. Gaze: {eyes}. Timbre: {voice}. Scenery: {background}{events}.",
    "Set against {background} scenery stands a {shape} chap tinted {colour}, gazing through {eyes} and murmuring in a {voice} register{events}.",
    "Meet a {colour} {shape} chap: {eyes}, a {voice} timbre, {background} scenery{events}.",
    "{shape} outline, {colour} tint, {eyes}, {voice} murmur, {background} surroundings{events}.",
    "Render a chap of {colour} tint and {shape} outline, gazing through {eyes}, murmuring in a {voice} register amid {background} surroundings{events}.",
    "Amid {background} scenery, murmuring in a {voice} register, sits a {colour} {shape} chap gazing through {eyes}{events}.",
    "Portrait of a {shape} chap tinted {colour}: {eyes}, {voice} register, {background} scenery{events}.",
    "{colour} tint, {shape} outline; the chap gazes through {eyes}, murmurs in a {voice} timbre and is set against {background} surroundings{events}.",
)
EVALUATION_EVENT_CLAUSES = {
    frozenset(): "",
    frozenset({"jump"}): "; every so often it gives a jump",
    frozenset({"chime"}): "; every so often a chime tinkles",
    frozenset({"jump", "chime"}): "; every so often it gives a jump as a chime tinkles",
}


def _articles(text: str) -> str:
    """Fix indefinite articles: "a oval" -> "an oval"."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def paraphrase(character: Character, events: frozenset[str], rng: random.Random) -> str:
    """A training prompt for `character` and `events` in a phrasing drawn with `rng`."""
    values = {
        "colour": character.face_colour,
        "shape": character.shape,
        "voice": character.voice,
        "background": character.background,
        "tone": rng.choice(TONES),
        "backdrop": rng.choice(BACKDROPS),
    }
    wordings = GLASSES_WORDINGS if character.eyes == "glasses" else EYE_WORDINGS
    values["eyes"] = rng.choice(wordings).format(eyes=character.eyes)
    values["face"] = rng.choice(FACES)
    values["place"] = rng.choice(PLACES).format(**values)
    values["speaks"] = rng.choice(SPEAKS).format(**values)
    values["speaking"] = rng.choice(SPEAKING).format(**values)
    text = rng.choice(SENTENCES).format(**values)
    if events:
        clauses = [rng.choice(TRAINING_EVENT_CLAUSES[event]) for event in sorted(events)]
        rng.shuffle(clauses)
        joiner = rng.choice(EVENT_JOINERS)
        clause = " and ".join(clauses)
        text += joiner + (clause[0].upper() + clause[1:] if joiner == ". " else clause)
    text = _articles(text) + rng.choice(ENDINGS)
    return text[0].upper() + text[1:] if rng.random() < 0.8 else text.lower()


def evaluation_prompt(character: Character, events: frozenset[str], index: int) -> str:
    """A held-out prompt: EVALUATION_TEMPLATES[index % their count] filled for `character` and `events`."""
    text = EVALUATION_TEMPLATES[index % len(EVALUATION_TEMPLATES)].format(
        colour=character.face_colour,
        shape=character.shape,
        eyes=EYE_PHRASES[character.eyes],
        voice=character.voice,
        background=character.background,
        events=EVALUATION_EVENT_CLAUSES[frozenset(events)],
    )
    text = _articles(text)
    return text[0].upper() + text[1:]


def paraphrase_prompt(prompt: str, rng: random.Random) -> str:
    """A training paraphrase of a world prompt (one naming all five attributes); "" stays "" (the unconditional prompt)."""
    if not prompt:
        return prompt
    attributes, events = parse_prompt(prompt)
    return paraphrase(Character(**attributes), events, rng)
