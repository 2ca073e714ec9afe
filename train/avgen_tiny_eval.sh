#!/usr/bin/env bash
# The evaluations on avgen-tiny's model card, each one `avgen eval` run written as JSON to
# weights/avgen-tiny/evaluation/. Two runs at a time, one torch thread each (2-core machine).
#   CLIPS=50 SECONDS_MAIN=20 bash train/avgen_tiny_eval.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AVGEN=${AVGEN:-.venv/bin/avgen}
MODEL=${MODEL:-weights/avgen-tiny}
OUT=$MODEL/evaluation
CLIPS=${CLIPS:-50}; SECONDS_MAIN=${SECONDS_MAIN:-20}        # main table
SMALL=${SMALL:-10}; SECONDS_SMALL=${SECONDS_SMALL:-10}      # few- vs multi-step, stage 2 vs stage 3
LONG=${LONG:-3}; SECONDS_LONG=${SECONDS_LONG:-120}          # drift over 2 minutes
mkdir -p "$OUT"
run() {  # a finished run's JSON appears whole (written under a hidden name, then renamed)
    local name=$1; shift
    "$AVGEN" eval --threads 1 --json "$@" > "$OUT/.$name.json.partial"
    mv "$OUT/.$name.json.partial" "$OUT/$name.json"; echo "wrote $OUT/$name.json"
}
run rolling-4-steps --model "$MODEL" --clips "$CLIPS" --seconds "$SECONDS_MAIN" &
run mutual-50-steps --model "$MODEL" --pipeline mutual --steps 50 --clips "$SMALL" --seconds "$SECONDS_SMALL"
wait
run rolling-4-steps-small --model "$MODEL" --clips "$SMALL" --seconds "$SECONDS_SMALL" &
if [ -n "${STAGE2_MODEL:-}" ]; then run stage2-rolling-4-steps-small --model "$STAGE2_MODEL" --clips "$SMALL" --seconds "$SECONDS_SMALL"; fi
wait
run long-rolling --model "$MODEL" --clips "$LONG" --seconds "$SECONDS_LONG" &
run long-chunkwise --model "$MODEL" --window 1 --clips "$LONG" --seconds "$SECONDS_LONG"
wait
run long-rolling-no-sink --model "$MODEL" --sink-chunks 0 --cache-chunks 5 --clips "$LONG" --seconds "$SECONDS_LONG"
