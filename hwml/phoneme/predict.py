"""What a phoneme run predicts: logits of a split, frame phones and segments of feature files or
audio, the course submission of a test folder."""

from __future__ import annotations

from pathlib import Path

import torch

from hwml import timing
from hwml.audio.decode import AUDIO_SUFFIXES
from hwml.audio.features import featurize
from hwml.audio.frames import frame_times, label_segments
from hwml.audio.params import MFCC_DIM, FeatureParams
from hwml.data.types import FrameSet
from hwml.errors import HwmlError
from hwml.machine import single_thread
from hwml.phoneme.batches import stacked_inputs, utterance_batches, utterance_bounds
from hwml.safeio import FEATURE_SUFFIXES, load_tensor_file, write_csv_atomic


@torch.no_grad()
def predict_logits(model, config: dict, split: FrameSet, batch_frames: int = 8192) -> torch.Tensor:
    """(N, C) float32 logits for every row of split, in row order; eval mode, no grad."""
    model.eval()
    device = next(model.parameters()).device
    n, D = config["concat_nframes"], config.get("frame_dim", MFCC_DIM)
    if split.dim != D * split.stacked:
        raise HwmlError(
            f"features have {split.dim} columns; this run expects {D}-dim frames ({D * n} columns when stacked)"
        )
    out = torch.empty(len(split), len(config["class_names"]), dtype=torch.float32)
    if config["model"]["name"] == "birnn":
        if split.stacked != 1:
            raise HwmlError(
                "this run's sequence model needs single frames with utterance boundaries, "
                f"not {split.stacked}-frame windows"
            )
        frames = (
            split
            if split.offsets is not None
            else FrameSet(split.feats, split.labels, torch.tensor([0, len(split)]), ["utt"], split.class_names)
        )
        utts = torch.arange(frames.n_utts)
        for (x, lengths), rows in utterance_batches(frames, utts, config["settings"].get("eval_frames", 40000)):
            logits = model(x.to(device), lengths)
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            out[rows] = logits.float().cpu()[mask]
        return out
    bounds = utterance_bounds(split) if split.stacked == 1 else None
    for i in range(0, len(split), batch_frames):
        rows = torch.arange(i, min(i + batch_frames, len(split)))
        out[rows] = model(stacked_inputs(split, rows, n, bounds).to(device)).float().cpu()
    return out


def one_utterance(x: torch.Tensor, name: str, class_names: list[str]) -> FrameSet:
    """Unlabelled (T, D) frames as a FrameSet of one utterance."""
    return FrameSet(x, None, torch.tensor([0, len(x)]), [name], class_names, 1)


def file_frames(path: Path, config: dict, params: FeatureParams) -> tuple[FrameSet, float | None]:
    """One input file as a FrameSet (raw (T, 39) frames of one utterance, or stacked windows),
    and its seconds when it is audio (None for feature files)."""
    names = config["class_names"]
    if path.suffix.lower() in FEATURE_SUFFIXES:
        x = load_tensor_file(path)
        D, n = config.get("frame_dim", MFCC_DIM), config["concat_nframes"]
        if x.shape[1] == D:
            return one_utterance(x, path.stem, names), None
        if x.shape[1] == D * n and n > 1:
            return FrameSet(x, None, None, None, names, n), None
        raise HwmlError(
            f"{path}: has {x.shape[1]} columns; this run takes {D} (single frames)"
            + (f" or {D * n} ({n}-frame windows)" if n > 1 else "")
        )
    if path.suffix.lower() in AUDIO_SUFFIXES:
        from hwml.audio.decode import load_audio

        with timing.stage("decode"):
            wave = load_audio(path)
        with timing.stage("features"):
            x = featurize(wave, params)
        return one_utterance(x, path.stem, names), len(wave) / params.sample_rate
    raise HwmlError(f"{path}: not a data folder, feature file (.npy/.pt) or audio file")


def warm_up(model, config: dict, feats: torch.Tensor) -> None:
    """One forward pass over (T, 39) frames (hwml.api.warm_run: the first request meets warm code)."""
    predict_logits(model, config, one_utterance(feats, "warm", config["class_names"]))


def predict_files(run_dir, inputs: list[Path], out_csv: Path, *, fsync: bool = True, textgrid_dir=None) -> dict:
    """Predict for the CLI's `predict` and the app; writes CSV atomically, returns a summary.
    fsync=False: atomic but not flushed to disk (the app's throwaway per-request CSVs).

    - A HW2 data folder (or zip): its course test split -> the submission `Id,Class` (one row per
      test frame, course order: timit_11 rows, libriphone utterances in test_split.txt order;
      Class is the course's label string of the predicted class).
    - Feature files (.npy/.pt: (T, 39) frames or (T, 39*concat) windows) and audio files: out_csv
      gets one row per frame, `file,frame,time,phone,prob` (time = frame centre in seconds,
      prob = softmax probability of the phone), and `<out_csv stem>.segments.csv` the merged runs,
      `file,start,end,phone` (seconds). The summary carries the segments per file too.
      With `textgrid_dir`, each file's segments also go to `<textgrid_dir>/<file stem>.TextGrid`
      (Praat; one `phones` tier from 0 to the audio's end, `hwml.data.textgrid`), its path in
      the file's summary as `textgrid` (stems given twice get `-2`, `-3`, ...).
    """
    from hwml.data import load_dataset
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    inputs = [Path(p) for p in inputs]
    out_csv = Path(out_csv)
    if not inputs:
        raise HwmlError("predict: no inputs given")
    folders = [p for p in inputs if p.is_dir() or p.suffix.lower() == ".zip"]
    if folders:
        if len(inputs) != 1:
            raise HwmlError("predict: give one data folder, or any number of feature/audio files, not both")
        dataset = load_dataset(folders[0])
        if dataset.kind != "phoneme" or dataset.test is None:
            raise HwmlError(f"{folders[0]}: no phoneme test split to predict")
        if textgrid_dir is not None:
            raise HwmlError("predict: TextGrids are made for audio or feature files, not for a course test split")
        test = dataset.test
        pred = predict_logits(model, config, test).argmax(1).tolist()
        labels = config["course_labels"]
        write_csv_atomic(out_csv, ["Id", "Class"], ((i, labels[p]) for i, p in enumerate(pred)), fsync=fsync)
        return {"kind": "submission", "out": str(out_csv), "rows": len(pred), "format": dataset.format}

    params = FeatureParams.from_dict(config["features"])
    names = config["class_names"]
    frame_rows, seg_rows, files, textgrids = [], [], [], set()
    for path in inputs:
        if not path.is_file():
            raise HwmlError(f"{path}: no such file")
        frames, seconds = file_frames(path, config, params)
        with timing.stage("model"), single_thread():
            probs = torch.softmax(predict_logits(model, config, frames), dim=1)
        p, idx = probs.max(1)
        phones = [names[i] for i in idx.tolist()]
        times = frame_times(len(phones), params).tolist()
        probs_of = p.tolist()  # Python floats: formatting a tensor element costs far more
        frame_rows += [(path.name, t, f"{times[t]:.3f}", ph, f"{probs_of[t]:.4f}") for t, ph in enumerate(phones)]
        segs = label_segments(phones, params)
        seg_rows += [(path.name, f"{a:.3f}", f"{b:.3f}", ph) for a, b, ph in segs]
        files.append({"file": str(path), "frames": len(phones), "segments": segs})
        if textgrid_dir is not None:
            files[-1]["textgrid"] = str(
                write_segments_textgrid(textgrid_dir, path.stem, segs, seconds, textgrids, fsync)
            )
    seg_csv = out_csv.with_name(out_csv.stem + ".segments.csv")
    with timing.stage("csv"):
        write_csv_atomic(out_csv, ["file", "frame", "time", "phone", "prob"], frame_rows, fsync=fsync)
        write_csv_atomic(seg_csv, ["file", "start", "end", "phone"], seg_rows, fsync=fsync)
    return {
        "kind": "frames",
        "out": str(out_csv),
        "segments_csv": str(seg_csv),
        "rows": len(frame_rows),
        "files": files,
    }


def write_segments_textgrid(folder, stem: str, segments: list, seconds: float | None, taken: set, fsync: bool) -> Path:
    """`<folder>/<stem>.TextGrid` (or `<stem>-2`, ... when `taken` has it) with the segments as
    a `phones` tier, ending at the audio's end (feature files: at the last segment's end)."""
    from hwml.data.textgrid import write_textgrid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name, k = stem, 1
    while name.lower() in taken:
        k += 1
        name = f"{stem}-{k}"
    taken.add(name.lower())
    end = max([seconds or 0.0] + [b for _, b, _ in segments])
    with timing.stage("textgrid"):
        return write_textgrid(folder / f"{name}.TextGrid", {"phones": segments}, end, fsync=fsync)
