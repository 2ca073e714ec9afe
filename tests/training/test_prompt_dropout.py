"""Prompt dropout: a share of samples trains with the empty prompt, the unconditional mode of guidance."""

from avgen.training.objectives import Draws
from avgen.training.trainer import Trainer


def prompts_seen(trainer: Trainer, steps: range) -> list[list[str]]:
    """The prompts each step's losses receive, for the first two clips."""
    seen = []
    trainer.objective.losses = lambda batch, draws: seen.append(batch["prompts"]) or {}
    batch = trainer.data.batch([0, 1], trainer.processes.device)
    for step in steps:
        trainer.objective.forward(batch, Draws(0, step, [0, 1], trainer.processes.device))
    return seen


def test_prompt_dropout_replaces_a_share_of_prompts_by_the_empty_one(small_config):
    trainer = Trainer(small_config("couple", steps=1, prompt_dropout=0.5), progress=False)
    seen = prompts_seen(trainer, range(20))
    dropped = sum(prompt == "" for prompts in seen for prompt in prompts)
    assert 8 <= dropped <= 32, dropped  # of 40, with p = 0.5
    assert prompts_seen(trainer, range(20)) == seen  # the same steps drop the same samples
    kept = {prompt for prompts in seen for prompt in prompts} - {""}
    assert kept == set(trainer.data.batch([0, 1], trainer.processes.device)["prompts"])

    undropped = Trainer(small_config("couple", steps=1), progress=False)
    assert all("" not in prompts for prompts in prompts_seen(undropped, range(20)))
