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
# continue_rolling FROM TO KEY=VALUE...: stage 4 continued from run FROM's newest checkpoint in
# a folder of its own (FROM keeps its checkpoints as they were), with these config changes.
continue_rolling() {
    local from=runs/tiny/$1 to=runs/tiny/$2 changes=()
    shift 2
    for change in "$@"; do changes+=(--set "$change"); done
    [ -d "$to" ] || cp -r "$from" "$to"
    "$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set "output_dir=$to" \
        "${changes[@]}" --resume --no-progress
}
# From step 1,500 to 3,000 with half of the steps rolled out chunk by chunk (window 1), so that
# the few-step weights serve both samplers.
continue_rolling rolling rolling-mixed steps=3000 chunkwise_probability=0.5
# Then to 6,000 with a quarter of the losses taken while chunk 0 is denoised from the prompt
# alone (opening_probability), at a higher peak learning rate than the first 3,000 steps.
continue_rolling rolling-mixed rolling-opening steps=6000 chunkwise_probability=0.5 opening_probability=0.25 learning_rate=1e-4
# 600 steps more with a larger share of openings, under a cosine to 9,000 steps, stopped at
# 6,600 to train on longer clips instead.
continue_rolling rolling-opening rolling-long steps=9000 stop_at=6600 chunkwise_probability=0.5 opening_probability=0.35 \
    learning_rate=1e-4
# Then on clips of 24 chunks (6 s) instead of 12: held-out grey backgrounds turned mint after
# about 3 s, the length of every rollout so far; half of the rolling losses now fall past it.
# Stopped at 7,500 of an 8,400-step cosine to leave time for the evaluation.
continue_rolling rolling-long rolling-late steps=8400 stop_at=7500 clip_chunks=24 chunkwise_probability=0.5 \
    opening_probability=0.25 learning_rate=2e-4
# Then 900 steps with prompt dropout (15 % of the samples trained with the empty prompt), at a
# learning rate near 7e-5 (a cosine from 6e-4 nearly at its end), stopped at 8,400.
continue_rolling rolling-late rolling-dropout steps=8600 stop_at=8400 clip_chunks=24 chunkwise_probability=0.5 \
    opening_probability=0.25 learning_rate=6e-4 prompt_dropout=0.15
# The video codec was then trained on, its encoder too (model card, Codecs), which moved the
# latents; so stage 4 went on from step 8,400's EMA weights, in a new run, on clips encoded by
# that codec: 900 steps under a 900-step cosine, then on to 2,400 under a 2,400-step one. (The
# stages above ran on the codec before it, vae/ of commit 3430b9e; re-run on today's codecs they
# train on its latents from the start.)
recodec=(init=runs/tiny/rolling-dropout/checkpoints/step-8400/ema output_dir=runs/tiny/rolling-recodec clip_chunks=24
    chunkwise_probability=0.5 opening_probability=0.25 prompt_dropout=0.15 learning_rate=5e-5 warmup_steps=50)
for steps in 900 2400; do
    "$PYTHON" train/rolling.py --config train/configs/rolling.yaml --set "threads=$THREADS" --set "steps=$steps" \
        "${recodec[@]/#/--set=}" --resume --no-progress
done
"$PYTHON" train/export.py runs/tiny/rolling-recodec --codecs weights/avgen-tiny --out runs/tiny/world-encoder-pipeline
# Then the sentence encoder (any English prompt) in place of the world-vocabulary one: the model
# above, prompted in the world's phrasings, teaches the same model with the new encoder, prompted
# mostly in paraphrases; only the text path trains (train/configs/text_encoder.yaml).
text_encoder=(--config train/configs/text_encoder.yaml --set "threads=$THREADS" --set init=runs/tiny/world-encoder-pipeline)
"$PYTHON" train/text_encoder.py "${text_encoder[@]}" --resume --no-progress
# Then on to 1,800 steps on 6-s clips (24 chunks, 256 of them) under a cosine to 1,800: the 2-s
# clips left mint backgrounds drifting more than the release before; on validation seeds 0-19 the
# longer clips lowered the paraphrases' drift 2.74 -> 2.54 and lifted adherence 91.7 -> 93.3 %.
[ -d runs/tiny/text-encoder-long ] || cp -r runs/tiny/text-encoder runs/tiny/text-encoder-long
"$PYTHON" train/text_encoder.py "${text_encoder[@]}" --set output_dir=runs/tiny/text-encoder-long --set clip_chunks=24 \
    --set clips=256 --set steps=1800 --resume --no-progress
"$PYTHON" train/export.py runs/tiny/text-encoder-long --codecs weights/avgen-tiny --out runs/tiny/sentence-encoder-pipeline
# Then voicing a given video (dubbing, train/configs/dubbing.yaml): stage 4 on, with half of the
# steps rolled out with the real video given clean and only the audio's losses taken. 1,500 steps
# under their cosine, then on under a cosine to 2,700, stopped at 2,200. On validation seeds 0-19
# (20 s) the voice kept within ±1 frame of the given mouth on 85 % of clips at step 1,500 and
# 90 / 95 / 100 % at 1,800 / 2,000 / 2,200.
dubbing=(--config train/configs/dubbing.yaml --set "threads=$THREADS")
"$PYTHON" train/rolling.py "${dubbing[@]}" --resume --no-progress
[ -d runs/tiny/rolling-dubbing-long ] || cp -r runs/tiny/rolling-dubbing runs/tiny/rolling-dubbing-long
"$PYTHON" train/rolling.py "${dubbing[@]}" --set output_dir=runs/tiny/rolling-dubbing-long --set steps=2700 --set stop_at=2200 \
    --resume --no-progress
"$PYTHON" train/export.py runs/tiny/rolling-dubbing-long --codecs weights/avgen-tiny --out runs/tiny/dubbing-pipeline
# Then more of stage 2's flow matching, the multi-step mode's own objective (train/configs/multi_step.yaml):
# the lips were lost in that mode, the teacher of the few-step ones. 1,000 steps; on validation seeds
# the 50-step mode's sync confidence went 0.51 -> 0.64 and the rolling 4-step mode's 0.44 -> 0.48.
"$PYTHON" train/couple.py --config train/configs/multi_step.yaml --set "threads=$THREADS" --resume --no-progress
# Sampled with the window each tower reads jointly and the audio-video fusion causally (issue 31:
# on validation seeds the rolling lips went 0.48 -> 0.57 with the same weights), and with the
# picture guided by the voice at 2 (0.57 -> 0.71, 2-min ΔDrift unchanged at 0.81) and by the
# prompt at 2 on the pure-noise chunk only (face shapes the voice's guidance tips round read back
# more often, drift falls; guided at every level, mint backgrounds lapse to grey; model card), and
# below that level too, but only at the eighth of each frame's latent positions where it guides
# most (an outline's corners), as the voice's guidance only pushes the eighth it changes most (the
# mouth): on validation seeds 50-99 face shapes read 84 -> 96 %, ΔDrift 0.86 -> 0.61. The
# pure-noise chunk is "from level 0.8": the same for 4 steps (levels 1, 0.75, ...), while the
# 50-step mode is guided over the same noise (its first 11 steps, not 1): ΔDrift 1.45 -> 1.00 there.
sampler=(--window-attention fusion-causal --guidance-scale 2 --guidance-from-level 0.8 --guidance-area-below-level 0.125
    --audio-guidance-scale 2 --audio-guidance-area 0.125)
"$PYTHON" train/export.py runs/tiny/couple-multi-step --codecs weights/avgen-tiny --out runs/tiny/multi-step-pipeline "${sampler[@]}"
# Then the 4-step jumps self-distilled as they are sampled, guided by the voice, against the guided
# multi-step mode's own moves, with that mode held where it was (train/configs/guided_teacher.yaml,
# 400 steps, chunk-wise windows): on validation seeds 50-59 the 4-step lips went 0.73 -> 0.74
# chunk by chunk and 0.72 -> 0.77 rolling, the 50-step mode's 0.76 -> 0.78. Its online weights ship.
"$PYTHON" train/rolling.py --config train/configs/guided_teacher.yaml --set "threads=$THREADS" --resume --no-progress
# A given video is voiced chunk by chunk (--dub-window 1): in the rolling window the voice came a
# frame before the given mouth on 20 of 50 validation clips (650-699), chunk by chunk on 4.
"$PYTHON" train/export.py runs/tiny/guided-teacher --no-ema --codecs weights/avgen-tiny --out weights/avgen-tiny "${sampler[@]}" --dub-window 1
# The stage-2 model as a pipeline too: the evaluation compares it with the shipped one.
"$PYTHON" train/export.py runs/tiny/couple --codecs weights/avgen-tiny --out runs/tiny/couple-pipeline
