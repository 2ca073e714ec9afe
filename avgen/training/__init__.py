"""Training: the four stages' objectives, the shared loop, distributed set-up, latents and export.

The entry points are the scripts in train/ (pretrain.py, couple.py, mutual_forcing.py,
rolling.py, export.py); the logic they share lives here so that tests and tools reuse it.
"""

from avgen.training.config import STAGES, ConfigError, TrainingConfig, load_config

__all__ = ["STAGES", "ConfigError", "TrainingConfig", "load_config"]
