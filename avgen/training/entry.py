"""The command line of the stage scripts in train/ (one parser, one error style).

A config the run cannot use (a typo, a missing folder, footage with nothing usable, codecs that
do not fit the model) is one line on stderr and exit status 2, as for the avgen CLI.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from avgen.training.config import ConfigError, load_config  # noqa: E402


def main(stage: str, description: str, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of TrainingConfig keys (avgen/training/config.py documents each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, stage=stage, overrides=args.set)
        from avgen.training.trainer import Trainer

        checkpoint = Trainer(config, resume=args.resume, progress=not args.no_progress).run()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"saved {checkpoint}")
