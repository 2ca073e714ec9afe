import itertools

import pytest

from avgen.world import VOCABULARIES, Character, describe
from avgen.world.prompt import EVENT_CLAUSES, TEMPLATES
from avgen.world.requests import unsupported_requests


def test_every_world_prompt_can_be_shown():
    base = {name: values[0] for name, values in VOCABULARIES.items()}
    for name, values in VOCABULARIES.items():
        for value, phrasing, events in itertools.product(values, range(len(TEMPLATES)), EVENT_CLAUSES):
            prompt = describe(Character(**{**base, name: value}), events, phrasing)
            assert unsupported_requests(prompt) is None, prompt


@pytest.mark.parametrize(
    "prompt, asked, known",
    [
        ("a cheerful little fellow with a square head chatting away, green skin, on a purple backdrop", "purple backdrop", "backgrounds it knows: grey, sky-blue"),
        ("A mint face talks", "mint face", "face colours it knows: red, orange"),
        ("a triangle head on a grey background", "triangle head", "face shapes it knows: round, square, oval, diamond"),
        ("A red round face with blue eyes", "blue eyes", "eye styles it knows: dot, googly, sleepy, glasses"),
        ("a round face speaking in a robotic voice", "robotic voice", "voices it knows: deep, soft, bright, squeaky"),
    ],
)
def test_what_the_world_cannot_show_is_named_with_what_it_can(prompt, asked, known):
    note = unsupported_requests(prompt)
    assert asked in note and known in note and note.endswith("it generates anyway") and "\n" not in note


def test_ordinary_words_are_not_requests():
    assert unsupported_requests("A cheerful little red round fellow, chatting away happily, on a sand background!") is None
    assert unsupported_requests("A talking diamond face, yellow, with googly eyes, in front of a sky-blue wall") is None
