"""Bad input gets one line that names the key or path."""

import subprocess
import sys
from pathlib import Path

import pytest

from avgen.training.config import ConfigError, load_config
from avgen.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]


def test_config_typo_names_the_key_and_the_closest_one(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("lerning_rate: 1.0e-3\n")
    with pytest.raises(ConfigError, match="unknown config key 'lerning_rate'.*did you mean 'learning_rate'"):
        load_config(path, stage="pretrain")


def test_config_values_are_checked():
    with pytest.raises(ConfigError, match="'steps' must be a int"):
        load_config(stage="pretrain", overrides=["steps=many"])
    with pytest.raises(ConfigError, match="'condition_probability' must be in"):
        load_config(stage="couple", overrides=["condition_probability=2"])
    with pytest.raises(ConfigError, match="'stop_at' must be in"):
        load_config(stage="pretrain", overrides=["steps=10", "stop_at=11"])
    with pytest.raises(ConfigError, match="'prompt_dropout' must be in"):
        load_config(stage="couple", overrides=["prompt_dropout=1"])
    with pytest.raises(ConfigError, match="'distill_teacher_step' must be in"):
        load_config(stage="rolling", overrides=["distill_teacher_step=-0.5"])
    with pytest.raises(ConfigError, match="trains 'rolling'"):
        load_config(stage="rolling", overrides=["stage=pretrain"])
    assert load_config(stage="pretrain", overrides=["learning_rate=1e-3"]).learning_rate == 1e-3


# Each shipped config and the stage whose script runs it.
SHIPPED = {
    "pretrain.yaml": "pretrain", "couple.yaml": "couple", "mutual_forcing.yaml": "mutual_forcing", "rolling.yaml": "rolling",
    "text_encoder.yaml": "text_encoder", "dubbing.yaml": "rolling", "from_video_model/audio_tower.yaml": "pretrain",
    "from_video_model/couple.yaml": "couple", "from_video_model/mutual_forcing.yaml": "mutual_forcing",
    "from_video_model/rolling.yaml": "rolling", "experiments/driving.yaml": "rolling",
    "experiments/mouth-weight.yaml": "rolling", "multi_step.yaml": "couple", "guided_teacher.yaml": "rolling",
    "experiments/multi-step-rolling.yaml": "rolling", "experiments/motion-weight-rolling.yaml": "rolling",
    "experiments/multi-step-teacher.yaml": "rolling", "experiments/causal-window-teacher.yaml": "rolling", "experiments/causal-window.yaml": "rolling",
    "experiments/fusion-causal-window.yaml": "rolling",
}  # fmt: skip


def test_shipped_configs_load():
    configs = ROOT / "train" / "configs"
    assert sorted(str(path.relative_to(configs)) for path in configs.rglob("*.yaml")) == sorted(SHIPPED)
    for name, stage in SHIPPED.items():
        assert load_config(configs / name, stage=stage).stage == stage


def test_missing_codecs_folder_is_one_line(tmp_path):
    script = ROOT / "train" / "pretrain.py"
    result = subprocess.run(
        [sys.executable, str(script), "--set", f"codecs={tmp_path / 'nowhere'}", "--set", f"output_dir={tmp_path}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: codecs folder '{tmp_path / 'nowhere'}' has no vae/: point 'codecs' at trained codecs (python train/codecs.py writes them)"]


def test_checkpoint_of_another_size_is_refused(small_config, tmp_path):
    trainer = Trainer(small_config("pretrain", steps=1), progress=False)
    trainer.run()
    with pytest.raises(ConfigError, match="does not fit preset 'wan-1.3b': video_dim is 128"):
        Trainer(small_config("couple", init=str(trainer.run_dir), preset="wan-1.3b"), progress=False)
