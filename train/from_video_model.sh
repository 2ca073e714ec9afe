#!/usr/bin/env bash
# Mutual Forcing's recipe on your own footage: start from a pretrained video model, train an audio
# tower alone, couple, self-distil, export, generate.
#
#   FOOTAGE=my-videos/ bash train/from_video_model.sh
#
# At tiny size on a CPU by default: the official-tiny fixture's Self-Forcing-format checkpoint
# converted with a random stand-in for the Wan2.1 base (python -m avgen.convert.tiny_base), the
# audio codec of weights/avgen-tiny, and, without FOOTAGE, a folder of world clips rendered as
# plain mp4 files with a caption beside each. Every step resumes when the script is run again.
#
#   FOOTAGE      folder of videos with captions (metadata.jsonl or a .txt per file; avgen footage check)
#   CHECKPOINT   a Self-Forcing-family checkpoint (default: the official-tiny fixture's)
#   BASE         its Wan2.1 base folder (default: a random tiny one written under RUNS)
#   RECIPE       avgen convert --recipe (default rolling-forcing); NUM_HEADS for a non-Wan width (fixture: 2)
#   AUDIO_CODEC  the audio codec folder (default weights/avgen-tiny/audio_codec)
#   RUNS         where everything goes (default runs/footage)
#   STEPS        every stage's steps (a smoke run; default: the configs')
#   SET          more key=value config changes for every stage, space-separated
#   LAUNCH       how a stage starts (default: python; e.g. "torchrun --nproc_per_node 2")
#   THREADS      torch threads per process (default 2)
# The stage configs are train/configs/from_video_model/*.yaml (keys: avgen/training/config.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PYTHON=${PYTHON:-.venv/bin/python}
AVGEN=${AVGEN:-.venv/bin/avgen}
RUNS=${RUNS:-runs/footage}
CHECKPOINT=${CHECKPOINT:-../shared/fixtures/official-tiny/tiny_self_forcing_format.pt}
RECIPE=${RECIPE:-rolling-forcing}
NUM_HEADS=${NUM_HEADS:-2}
AUDIO_CODEC=${AUDIO_CODEC:-weights/avgen-tiny/audio_codec}
THREADS=${THREADS:-2}
read -r -a LAUNCH <<< "${LAUNCH:-$PYTHON}"
mkdir -p "$RUNS"

if [ -z "${BASE:-}" ]; then
    BASE=$RUNS/wan-base
    [ -d "$BASE" ] || "$PYTHON" -m avgen.convert.tiny_base "$BASE"
fi
if [ -z "${FOOTAGE:-}" ]; then
    FOOTAGE=$RUNS/demo-footage
    mkdir -p "$FOOTAGE"
    for seed in 0 1 2 3 4 5 6 7; do
        clip=$FOOTAGE/world-$seed
        [ -f "$clip.txt" ] && continue
        "$AVGEN" render-world --seed "$seed" --seconds 8 -o "$clip.mp4" \
            | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["prompt"])' > "$clip.txt.partial"
        mv "$clip.txt.partial" "$clip.txt"
    done
fi

# The video model, then a codecs folder: its Wan VAE beside the audio codec.
[ -d "$RUNS/converted" ] || "$AVGEN" convert "$CHECKPOINT" --base "$BASE" --recipe "$RECIPE" --num-heads "$NUM_HEADS" \
    --dtype fp32 -o "$RUNS/converted"
mkdir -p "$RUNS/codecs"
ln -sfn "$(realpath "$RUNS/converted/vae")" "$RUNS/codecs/vae"
ln -sfn "$(realpath "$AUDIO_CODEC")" "$RUNS/codecs/audio_codec"
# 15 latent frames: the configs' clip_chunks (5) x the converted model's chunks (3 frames).
"$AVGEN" footage check "$FOOTAGE" --model-config "$RUNS/codecs" --latent-frames 15

changes=(data="$FOOTAGE" codecs="$RUNS/codecs" threads="$THREADS" ${STEPS:+steps=$STEPS} ${SET:-})
init=$RUNS/converted
for stage in audio_tower couple mutual_forcing rolling; do
    script=$stage
    [ "$stage" = audio_tower ] && script=pretrain
    "${LAUNCH[@]}" "train/$script.py" --config "train/configs/from_video_model/$stage.yaml" \
        "${changes[@]/#/--set=}" --set "init=$init" --set "output_dir=$RUNS/$stage" --resume --no-progress
    init=$RUNS/$stage
done

"$PYTHON" train/export.py "$RUNS/rolling" --codecs "$RUNS/codecs" --out "$RUNS/model"
prompt=$(head -n 1 "$(find "$FOOTAGE" -name '*.txt' | sort | head -n 1)" 2>/dev/null || echo "a person talks")
"$AVGEN" generate --model "$RUNS/model" "$prompt" --seconds 4 -o "$RUNS/sample-rolling.mp4"
"$AVGEN" generate --model "$RUNS/model" --pipeline mutual --steps 8 "$prompt" --seconds 4 -o "$RUNS/sample-mutual.mp4"
