"""What a speaker run predicts: utterance scores, the top-5 speakers of clips, the course
submission of a test folder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from hwml import timing
from hwml.audio.decode import AUDIO_SUFFIXES, load_audio
from hwml.audio.params import LOGMEL40, N_MELS, FeatureParams
from hwml.errors import HwmlError
from hwml.machine import single_thread
from hwml.safeio import FEATURE_SUFFIXES, load_tensor_file, write_csv_atomic
from hwml.speaker.batches import as_utterances
from hwml.speaker.inference import per_utterance

TOP_K = 5  # the CSVs' top-K columns: speakers (predict), enrolled people (hwml.speaker.identify)


def load_clip(clip, features: dict | None = None) -> Tensor:
    """(T, 40) features of a clip: a feature tensor/array, a .pt/.npy file, or an audio file."""
    if isinstance(clip, (str, Path)):
        path = Path(clip)
        suffix = path.suffix.lower()
        if suffix in FEATURE_SUFFIXES:
            return load_tensor_file(path, width=N_MELS)
        if suffix in AUDIO_SUFFIXES:
            from hwml.audio.features import featurize  # torchaudio: imported when first needed

            params = FeatureParams.from_dict(features) if features else LOGMEL40
            with timing.stage("decode"):
                wave = load_audio(path)
            with timing.stage("features"), single_thread():  # small ops: a second intra-op thread only adds waiting
                return featurize(wave, params)
        raise HwmlError(
            f"{path}: not a feature file ({', '.join(FEATURE_SUFFIXES)}) or audio file ({', '.join(AUDIO_SUFFIXES)})"
        )
    x = torch.as_tensor(clip, dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != N_MELS or x.shape[0] == 0:
        raise HwmlError(f"expected (frames, {N_MELS}) features, got shape {tuple(x.shape)}")
    return x


def warm_up(model: nn.Module, config: dict, feats: Tensor) -> None:
    """One forward pass over (T, 40) frames (hwml.api.warm_run: the first request meets warm code)."""
    predict_logits(model, config, [feats])


def predict_logits(model: nn.Module, config: dict | None, split) -> Tensor:
    """(N, C) utterance scores (logits; averaged over windows of long utterances), no cropping."""
    return per_utterance(model, model, as_utterances(split), config, model.n_classes)


def predict_files(run_dir, inputs: list[Path], out_csv: Path, *, fsync: bool = True) -> dict:
    """CLI `predict` for a speaker run; writes out_csv atomically (flushed to disk unless
    fsync=False: the app's throwaway per-request CSVs) and returns a summary.

    - one HW4 Dataset folder (or zip) with testdata.json: the course submission, header
      `Id,Category`, Id = feature_path, Category = speaker name, rows in testdata.json order;
    - feature files (.pt/.npy, (T, 40)) or audio files: header
      `Id,Category,top1,p1,...,top5,p5`, Id = the path as given, Category = the best speaker,
      topK/pK = the K-th most likely speaker and its softmax probability (fewer columns when the
      run knows fewer than 5 speakers).
    """
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    names = config["class_names"]
    inputs = [Path(p) for p in inputs]
    folders = [p for p in inputs if p.is_dir() or p.suffix.lower() == ".zip"]
    if folders:
        if len(inputs) != 1:
            raise HwmlError(f"{folders[0]}: give a data folder alone, not together with other inputs")
        from hwml.data import load_dataset

        dataset = load_dataset(folders[0], need_train=False)
        if dataset.kind != "speaker" or dataset.test is None:
            raise HwmlError(f"{folders[0]}: no HW4 test split (testdata.json) to predict")
        logits = predict_logits(model, config, dataset.test)
        pred = logits.argmax(-1).tolist()
        write_csv_atomic(out_csv, ["Id", "Category"], zip(dataset.test.utt_ids, (names[i] for i in pred)), fsync=fsync)
        return {"out": str(out_csv), "rows": len(pred), "format": "submission", "header": "Id,Category"}
    feats = [load_clip(p, config.get("features")) for p in inputs]
    with timing.stage("model"):
        probs = predict_logits(model, config, feats).softmax(-1)
    k = min(TOP_K, len(names))
    top_p, top_i = probs.topk(k, dim=-1)
    header = ["Id", "Category"] + [c for j in range(1, k + 1) for c in (f"top{j}", f"p{j}")]
    rows = [
        [str(path), names[ti[0]]] + [v for j in range(k) for v in (names[ti[j]], f"{tp[j]:.6f}")]
        for path, ti, tp in zip(inputs, top_i.tolist(), top_p.tolist())
    ]
    with timing.stage("csv"):
        write_csv_atomic(out_csv, header, rows, fsync=fsync)
    return {"out": str(out_csv), "rows": len(rows), "format": "top5", "header": ",".join(header)}
