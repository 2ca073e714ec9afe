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
# Stage 4 continued from its step 1,500 to 3,000 with half of the steps rolled out chunk by
# chunk (window 1), so that the few-step weights serve both samplers; its own folder keeps the
# first half's checkpoints as they were.
[ -d runs/tiny/rolling-mixed ] || cp -r runs/tiny/rolling runs/tiny/rolling-mixed
"$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set output_dir=runs/tiny/rolling-mixed \
    --set steps=3000 --set chunkwise_probability=0.5 --resume --no-progress
# Then to 6,000 with a quarter of the losses taken while chunk 0 is denoised from the prompt
# alone (opening_probability), at a higher peak learning rate than the first 3,000 steps.
[ -d runs/tiny/rolling-opening ] || cp -r runs/tiny/rolling-mixed runs/tiny/rolling-opening
"$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set output_dir=runs/tiny/rolling-opening \
    --set steps=6000 --set chunkwise_probability=0.5 --set opening_probability=0.25 --set learning_rate=1e-4 --resume --no-progress
# 600 steps more with a larger share of openings, under a cosine to 9,000 steps, stopped at
# 6,600 to train on longer clips instead.
[ -d runs/tiny/rolling-long ] || cp -r runs/tiny/rolling-opening runs/tiny/rolling-long
"$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set output_dir=runs/tiny/rolling-long \
    --set steps=9000 --set stop_at=6600 --set chunkwise_probability=0.5 --set opening_probability=0.35 --set learning_rate=1e-4 \
    --resume --no-progress
# Then on clips of 24 chunks (6 s) instead of 12: held-out grey backgrounds turned mint after
# about 3 s, the length of every rollout so far; half of the rolling losses now fall past it.
# Stopped at 7,500 of an 8,400-step cosine to leave time for the evaluation.
[ -d runs/tiny/rolling-late ] || { mkdir -p runs/tiny/rolling-late/checkpoints && cp -r runs/tiny/rolling-long/checkpoints/step-6600 runs/tiny/rolling-late/checkpoints/; }
"$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set output_dir=runs/tiny/rolling-late \
    --set steps=8400 --set stop_at=7500 --set clip_chunks=24 --set chunkwise_probability=0.5 --set opening_probability=0.25 --set learning_rate=2e-4 \
    --resume --no-progress
"$PYTHON" train/export.py runs/tiny/rolling-late --codecs weights/avgen-tiny --out weights/avgen-tiny
# The stage-2 model as a pipeline too: the evaluation compares it with the shipped one.
"$PYTHON" train/export.py runs/tiny/couple --codecs weights/avgen-tiny --out runs/tiny/couple-pipeline
