import pytest

from avgen.world import (
    BACKGROUNDS,
    EVENTS,
    EYES,
    FACE_COLOURS,
    SHAPES,
    VOICES,
    Character,
    is_held_out,
    matching_ids,
    num_characters,
    split_ids,
)
from avgen.world.attributes import all_characters


def test_vocabularies_are_rich_enough():
    assert len(SHAPES) >= 4
    assert len(FACE_COLOURS) >= 6
    assert len(EYES) >= 4
    assert len(BACKGROUNDS) >= 6
    assert len(VOICES) >= 3
    assert len(EVENTS) >= 2


def test_at_least_1500_distinct_characters_with_stable_ids():
    characters = all_characters()
    assert len(characters) == num_characters() >= 1500
    assert len(set(characters)) == len(characters)
    assert [c.id for c in characters] == list(range(len(characters)))
    assert all(Character.from_id(c.id) == c for c in characters[::97])


def test_face_colours_stand_out_from_every_background():
    for face in FACE_COLOURS.values():
        for background in BACKGROUNDS.values():
            assert sum((a - b) ** 2 for a, b in zip(face, background)) ** 0.5 > 70


def test_split_is_disjoint_complete_and_about_one_in_ten():
    train, held_out = set(split_ids("train")), set(split_ids("held-out"))
    assert not train & held_out
    assert train | held_out == set(range(num_characters()))
    assert 0.07 < len(held_out) / num_characters() < 0.13
    assert all(is_held_out(i) for i in held_out)


def test_split_never_changes():
    # A changed split would leak held-out characters into cached training data.
    assert split_ids("held-out")[:6] == (2, 18, 29, 30, 31, 43)


def test_every_attribute_value_has_held_out_characters():
    for shape in SHAPES:
        assert matching_ids("held-out", shape=shape)
    for colour in FACE_COLOURS:
        assert matching_ids("held-out", face_colour=colour)


def test_unknown_attribute_names_the_choices():
    with pytest.raises(ValueError, match="unknown shape 'blob': choose one of round"):
        Character("blob", "red", "dot", "grey", "deep")
    with pytest.raises(ValueError, match="unknown attribute 'hat'"):
        matching_ids("train", hat="top")
    with pytest.raises(ValueError, match="unknown split"):
        split_ids("test")
