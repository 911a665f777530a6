#!/usr/bin/env bash
# Re-make the shipped models: one run folder per task, trained on the built-in corpus
# (default size, seed 0) with the CLI, then stripped of their resume state.
#   bash checkpoints/make.sh            (from the repository root; ~10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
corpus=$($PY -m hwml demo-data --size default --seed 0)
for task in phoneme speaker; do rm -rf "checkpoints/$task.new"; done
$PY -m hwml train phoneme "$corpus/libriphone" --out checkpoints/phoneme.new --preset "${PHONEME_PRESET:-medium}" \
    --max-seconds "${PHONEME_SECONDS:-240}" --seed 0 --quiet
$PY -m hwml train speaker "$corpus/speaker" --out checkpoints/speaker.new --preset "${SPEAKER_PRESET:-boss}" \
    --max-seconds "${SPEAKER_SECONDS:-300}" --seed 0 --quiet
for task in phoneme speaker; do
  $PY -m hwml evaluate "checkpoints/$task.new" "$corpus/$([ $task = phoneme ] && echo libriphone || echo speaker)" --split test --json | tail -n 1
  rm -f "checkpoints/$task.new"/resume.*
  rm -rf "checkpoints/$task" && mv "checkpoints/$task.new" "checkpoints/$task"
done
