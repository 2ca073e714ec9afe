#!/usr/bin/env bash
# The avgen-tiny recipe: the four stages on the shipped codecs, then export and evaluation.
#   bash train/avgen_tiny.sh            (THREADS=2 bash train/avgen_tiny.sh on a free machine)
# Each stage continues from its newest checkpoint when re-run (--resume), so a killed
# recipe picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}
for stage in pretrain couple mutual_forcing rolling; do
    "$PYTHON" "train/$stage.py" --config "train/configs/$stage.yaml" --set "threads=$THREADS" --resume --no-progress
done
"$PYTHON" train/export.py runs/tiny/rolling --codecs weights/avgen-tiny --out weights/avgen-tiny
# The stage-2 model as a pipeline too: the evaluation compares it with the shipped one.
"$PYTHON" train/export.py runs/tiny/couple --codecs weights/avgen-tiny --out runs/tiny/couple-pipeline
