"""A trained checkpoint exports to a pipeline folder that both pipelines load and generate from."""

import numpy as np
import pytest
from avgen.pipelines import MutualForcingPipeline, RollingForcingPipeline

from avgen.training.config import ConfigError
from avgen.training.export import export_pipeline
from avgen.training.trainer import Trainer


def test_exported_folder_loads_in_both_pipelines_and_generates(small_config, codecs, tmp_path):
    trainer = Trainer(small_config("mutual_forcing", steps=1, ema_decay=0.5), progress=False)
    checkpoint = trainer.run()
    out = export_pipeline(
        trainer.run_dir, codecs, tmp_path / "pipeline", window_attention="fusion-causal", dub_window=1, guidance_scale=2.0,
        guidance_from_level=1.0, guidance_area_below_level=0.25, audio_guidance_scale=1.5, audio_guidance_area=0.125,
    )  # fmt: skip
    assert (out / "model_index.json").is_file()
    config = RollingForcingPipeline.from_pretrained(out).config  # the sampler settings the folder keeps
    assert (config.window_attention, config.guidance_scale, config.guidance_from_level, config.guidance_area_below_level) == ("fusion-causal", 2.0, 1.0, 0.25)
    assert (config.audio_guidance_scale, config.audio_guidance_area, config.dub_window) == (1.5, 0.125, 1)
    for cls in (RollingForcingPipeline, MutualForcingPipeline):
        pipe = cls.from_pretrained(out)
        pipe.set_progress_bar_config(disable=True)
        result = pipe("A red round face with glasses talks in a deep voice on a navy background.", seconds=0.5, num_inference_steps=4)
        assert result.frames.shape == (1, 8, 64, 64, 3) and result.frames.dtype == np.uint8
        assert result.audio.shape == (1, 1, 8000)
    ema = RollingForcingPipeline.from_pretrained(out).transformer.state_dict()
    online = trainer.generator.transformer.state_dict()
    assert any((ema[k] - online[k]).abs().max() > 0 for k in online)  # the EMA weights were exported
    assert checkpoint.name == "step-1"


def test_export_refuses_codecs_of_another_latent_size(small_config, narrow_codecs, tmp_path):
    trainer = Trainer(small_config("pretrain", steps=1), progress=False)
    trainer.run()
    other = tmp_path / "other-codecs"
    vae, audio_codec = narrow_codecs(z_dim=4)
    vae.save_pretrained(other / "vae")
    audio_codec.save_pretrained(other / "audio_codec")
    with pytest.raises(ConfigError, match="4 latent channels"):
        export_pipeline(trainer.run_dir, other, tmp_path / "pipeline")
