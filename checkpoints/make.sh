#!/usr/bin/env bash
# Re-make the shipped models from data this machine can reach, with the CLI (about 30 minutes on
# 2 cores), each with a model card (checkpoints/<task>/README.md, written by card.py):
#
#   phoneme: a model trained on the built-in corpus alone force-aligns speechocean762's transcripts
#            (25 speakers held out as a test); the shipped model then trains on the aligned real
#            speech merged with the built-in corpus.
#   speaker: trained on all 250 speakers of speechocean762; its training speakers' embedding statistics
#            (checkpoints/embedding_stats.py) and, with FSDD, the Who is speaking? thresholds calibrated on
#            FSDD's unseen speakers (bench/bench_speaker_short.py --save-thresholds).
#
# speechocean762 is looked for in ../shared/data (SPEECHOCEAN=DIR to point elsewhere); without it
# both models are trained on the built-in corpus alone, and the script says so. KEEP=DIR keeps the
# aligned speechocean762 folder (its test part: the 25 held-out speakers) and the aligning model.
#   bash checkpoints/make.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export TQDM_DISABLE=1   # no progress bars in the log
SO=${SPEECHOCEAN:-../shared/data/speechocean762}
FSDD=${FSDD:-../shared/data/fsdd/recordings}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hwml-make.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PHONEME_PRESET=${PHONEME_PRESET:-boss}; PHONEME_SECONDS=${PHONEME_SECONDS:-600}
SPEAKER_PRESET=${SPEAKER_PRESET:-boss}; SPEAKER_SECONDS=${SPEAKER_SECONDS:-720}

corpus=$($PY -m hwml demo-data --size default --seed 0)
for task in phoneme speaker; do rm -rf "checkpoints/$task.new"; done

evaluate() {  # RUN DATA NAME: one JSON line of test-split figures appended to RUN/evaluation.jsonl
  $PY -m hwml evaluate "$1" "$2" --split test --json | tail -n 1 |
    $PY -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({'data': '$3', 'accuracy': r['accuracy'], 'n': r['n']}))" \
    >> "$1/evaluation.jsonl"
}

if [ -d "$SO/wav" ]; then
  echo "make.sh: speechocean762 found at $SO: training on real speech" >&2
  # --- phoneme: align real speech with a built-in-corpus model, then train on both
  $PY -m hwml train phoneme "$corpus/libriphone" --out "$WORK/espeak_phoneme" --preset medium \
      --max-seconds "${ALIGNER_SECONDS:-180}" --seed 0 --quiet > /dev/null
  $PY -m hwml import phoneme "$SO/wav" "$WORK/so_aligned" --align-model "$WORK/espeak_phoneme" \
      --lexicon checkpoints/so762_lexicon.txt --test-speakers 25 --seed 0 > "$WORK/align.json"
  $PY -m hwml merge "$WORK/phoneme_data" "so762=$WORK/so_aligned" "espeak=$corpus/libriphone" > /dev/null
  $PY -m hwml train phoneme "$WORK/phoneme_data" --out checkpoints/phoneme.new --preset "$PHONEME_PRESET" \
      --max-seconds "$PHONEME_SECONDS" --seed 0 --quiet > /dev/null
  evaluate checkpoints/phoneme.new "$corpus/libriphone" "built-in corpus: held-out eSpeak voices (exact labels)"
  evaluate checkpoints/phoneme.new "$WORK/so_aligned" "speechocean762: 25 held-out real speakers (forced-aligned labels)"
  cp "$WORK/so_aligned/alignment.json" checkpoints/phoneme.new/alignment.json
  if [ -n "${KEEP:-}" ]; then rm -rf "$KEEP" && mkdir -p "$KEEP" && cp -r "$WORK/so_aligned" "$WORK/espeak_phoneme" "$KEEP/"; fi
  # --- speaker: every speechocean762 speaker
  $PY -m hwml import speaker "$SO/wav" "$WORK/so_speakers" > /dev/null
  $PY -m hwml train speaker "$WORK/so_speakers" --out checkpoints/speaker.new --preset "$SPEAKER_PRESET" \
      --max-seconds "$SPEAKER_SECONDS" --seed 0 --quiet > /dev/null
  # embedding statistics of the training speakers (centring, whitening, cohort: hwml/speaker/scoring.py)
  $PY checkpoints/embedding_stats.py checkpoints/speaker.new "$WORK/so_speakers" > /dev/null
  speaker_data=speechocean762
  if [ -d "$FSDD" ]; then  # real voices the speaker model never heard: open-set identification
    $PY bench/bench_speaker_open_set.py --run checkpoints/speaker.new --data "$FSDD" --enrol-seconds 10 --threads 2 |
      $PY -c "import json,sys
rows=[json.loads(l) for l in sys.stdin if l.strip()]
setup=next(r for r in rows if r.get('event')=='setup'); m=next(r for r in rows if r.get('method')=='model')
b=next(r for r in rows if r.get('method')=='baseline')
print(json.dumps({'data': f\"FSDD: {setup['heldout']} unseen speakers, enrolled from ~10 s each, top-1 identification (EER {m['eer']:.1%}; learning-free baseline {b['top1']:.1%}, EER {b['eer']:.1%})\", 'accuracy': m['top1'], 'n': setup['test_clips']}))" \
      >> checkpoints/speaker.new/evaluation.jsonl
    # Who is speaking?'s thresholds, short and long clips, calibrated on FSDD's unseen speakers
    $PY bench/bench_speaker_short.py --run checkpoints/speaker.new --data "$(dirname "$(dirname "$FSDD")")" \
        --save-thresholds > /dev/null
  fi
else
  echo "make.sh: speechocean762 not found at $SO: training on the built-in corpus only" >&2
  $PY -m hwml train phoneme "$corpus/libriphone" --out checkpoints/phoneme.new --preset "$PHONEME_PRESET" \
      --max-seconds "$PHONEME_SECONDS" --seed 0 --quiet > /dev/null
  evaluate checkpoints/phoneme.new "$corpus/libriphone" "built-in corpus: held-out eSpeak voices (exact labels)"
  $PY -m hwml train speaker "$corpus/speaker" --out checkpoints/speaker.new --preset "$SPEAKER_PRESET" \
      --max-seconds "$SPEAKER_SECONDS" --seed 0 --quiet > /dev/null
  evaluate checkpoints/speaker.new "$corpus/speaker" "built-in corpus: held-out utterances of its 72 voices"
  $PY checkpoints/embedding_stats.py checkpoints/speaker.new "$corpus/speaker" > /dev/null
  speaker_data=builtin
fi

for task in phoneme speaker; do
  rm -f "checkpoints/$task.new"/resume.*
  $PY checkpoints/card.py "checkpoints/$task.new" --speaker-data "$speaker_data"
  rm -rf "checkpoints/$task" && mv "checkpoints/$task.new" "checkpoints/$task"
  echo "checkpoints/$task: $(cat "checkpoints/$task/evaluation.jsonl" 2>/dev/null | tr '\n' ' ')" >&2
done
