"""The text_encoder stage: a trained model's text encoder swapped for the sentence encoder by distillation."""

import torch

from avgen.text import SentenceTextEncoder
from avgen.training.generator import Generator
from avgen.training.trainer import Trainer

from .test_stages import fixed_loss


def test_the_sentence_encoder_learns_to_prompt_the_model_and_nothing_else_moves(small_config, tmp_path):
    teacher_run = Trainer(small_config("couple", steps=2, output_dir=str(tmp_path / "couple")), progress=False).run()
    trainer = Trainer(
        small_config("text_encoder", init=str(teacher_run), text_encoder="sentence", steps=25, learning_rate=3e-3), progress=False
    )
    assert isinstance(trainer.generator.text_encoder, SentenceTextEncoder)
    before = fixed_loss(trainer)
    checkpoint = trainer.run()
    assert fixed_loss(trainer) < 0.8 * before

    teacher, student = Generator.from_folder(teacher_run).transformer.state_dict(), Generator.from_folder(checkpoint).transformer.state_dict()
    text_path = ("text_embedder", "attn2.to_k", "attn2.to_v", "attn2.norm_k")
    moved = {name for name in teacher if not torch.equal(teacher[name], student[name])}
    assert moved and all(any(part in name for part in text_path) for name in moved)
    # The encoder's weights stay in their package: the checkpoint holds the projection alone.
    saved = (checkpoint / "text_encoder" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert saved < 200_000
