import random
import re

from avgen.world import VOCABULARIES, Character
from avgen.world import paraphrase as module
from avgen.world.paraphrase import EVALUATION_EVENT_CLAUSES, EVALUATION_TEMPLATES, evaluation_prompt, paraphrase
from avgen.world.prompt import EVENT_WORDS, EYE_PHRASES, parse_prompt
from avgen.world.requests import unsupported_requests

EVENT_SETS = [frozenset(), frozenset({"jump"}), frozenset({"chime"}), frozenset({"jump", "chime"})]
FUNCTION_WORDS = {"a", "an", "the", "and", "with", "in", "on", "of", "its", "it", "is"}


def characters():
    """Every value of every attribute, each once, set against varied values of the others."""
    base = {name: values[0] for name, values in VOCABULARIES.items()}
    for offset, (name, values) in enumerate(VOCABULARIES.items()):
        for i, value in enumerate(values):
            others = {n: v[(i + offset) % len(v)] for n, v in VOCABULARIES.items()}
            yield Character(**{**base, name: value})
            yield Character(**{**others, name: value})


def expected(character):
    return {name: getattr(character, name) for name in VOCABULARIES}


def words(text):
    return set(re.findall(r"[a-z]+(?:-[a-z]+)*", text.lower()))


def test_paraphrases_parse_back_and_ask_nothing_unshowable():
    for character in characters():
        for events in EVENT_SETS:
            for seed in range(25):
                prompt = paraphrase(character, events, random.Random(seed))
                assert parse_prompt(prompt) == (expected(character), events), prompt
                assert unsupported_requests(prompt) is None, prompt


def test_evaluation_prompts_parse_back_and_ask_nothing_unshowable():
    assert len(EVALUATION_TEMPLATES) >= 10
    for character in characters():
        for events in EVENT_SETS:
            for index in range(len(EVALUATION_TEMPLATES)):
                prompt = evaluation_prompt(character, events, index)
                assert parse_prompt(prompt) == (expected(character), events), prompt
                assert unsupported_requests(prompt) is None, prompt


def test_paraphrases_are_many_and_deterministic():
    character = Character("oval", "orange", "googly", "sand", "bright")
    events = frozenset({"jump"})
    prompts = [paraphrase(character, events, random.Random(seed)) for seed in range(200)]
    assert len(set(prompts)) >= 50
    assert prompts == [paraphrase(character, events, random.Random(seed)) for seed in range(200)]


def training_words():
    """Every word the training generator can emit: its parts, and a sample of its output (for glue words)."""
    found = set()

    def collect(value):
        if isinstance(value, str):
            found.update(words(re.sub(r"\{\w+\}", " ", value)))
        elif isinstance(value, (tuple, list)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for name, value in vars(module).items():
        if name.isupper() and not name.startswith("EVALUATION"):
            collect(value)
    for seed, character in enumerate(characters()):
        for events in EVENT_SETS:
            found |= words(paraphrase(character, events, random.Random(seed)))
    return found


def test_evaluation_wording_is_held_out():
    allowed = set(FUNCTION_WORDS)
    for values in VOCABULARIES.values():
        allowed |= set(values)
    for phrase in EYE_PHRASES.values():
        allowed |= words(phrase)
    for cues in EVENT_WORDS.values():
        allowed |= set(cues)
    evaluation = set()
    for text in (*EVALUATION_TEMPLATES, *EVALUATION_EVENT_CLAUSES.values()):
        evaluation |= words(re.sub(r"\{\w+\}", " ", text))
    evaluation -= allowed
    assert len(evaluation) >= 10
    assert not evaluation & training_words(), sorted(evaluation & training_words())
