"""The Learn tab's live examples: every number a lesson shows is computed here, on the spot.

The UI only lays these results out. Each pitfall demo (the defects of the course's sample
code, `shared/PITFALLS.md`) runs the defective version and hwml's fix side by side on small
tensors and reports what differs, so a class sees the effect rather than being told about it.
All demos are seeded and take well under a second, except the model comparison, which trains
tiny runs for a few seconds. torch is imported inside the functions, so the app's page (which
lists the lessons) builds without loading it.
"""

from __future__ import annotations

import json
import pickle
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwml.errors import HwmlError

if TYPE_CHECKING:
    import torch

EXAMPLE_SENTENCE = "She sells bright yellow shells by the quiet seashore."


# ------------------------------------------------------------------------------- audio -> features

@dataclass
class Utterance:
    """A synthesised utterance at 16 kHz with eSpeak's phone timings (seconds)."""

    text: str
    wave: torch.Tensor                      # (samples,) float32 at 16 kHz
    sample_rate: int
    phones: list[tuple[str, float, float]]  # (eSpeak phone, start s, end s)

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate


def example_utterance(text: str = EXAMPLE_SENTENCE, voice: str = "en-us") -> Utterance:
    """Speak `text` with the built-in synthesiser (eSpeak NG, no download) and resample to 16 kHz."""
    import torch

    from hwml.audio import SAMPLE_RATE, wave_to_16k
    from hwml.corpus.espeak import synthesize

    syn = synthesize(text, voice)
    wave = wave_to_16k(torch.from_numpy(np.asarray(syn.wave, dtype=np.float32)), syn.sample_rate)
    n = len(syn.wave)
    bounds = [s for _, s in syn.phones] + [n]
    phones = [(name, start / syn.sample_rate, bounds[i + 1] / syn.sample_rate)
              for i, (name, start) in enumerate(syn.phones) if bounds[i + 1] > start]
    return Utterance(text, wave, SAMPLE_RATE, phones)


@dataclass
class FeatureViews:
    """Every stage between a wave and the course's features, ready to plot."""

    times: np.ndarray          # (T,) frame centres in seconds
    power_db: np.ndarray       # (n_fft/2+1, T) linear-frequency power spectrogram in dB
    logmel: np.ndarray         # (T, 40) HW4 features
    mfcc: np.ndarray           # (T, 39) HW2 features (13 MFCC + deltas + delta-deltas, normalised)
    freqs_hz: np.ndarray       # (n_fft/2+1,) frequency of each spectrogram row


def feature_views(wave: torch.Tensor) -> FeatureViews:
    """The spectrogram with the very framing hwml.audio uses, then log-mel and MFCC-39 from hwml.audio."""
    import torch

    from hwml.audio import LOGMEL40, MFCC39, frame_times, logmel40, mfcc39

    p = MFCC39
    wave = torch.as_tensor(wave, dtype=torch.float32)
    spec = torch.stft(wave, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
                      window=torch.hann_window(p.win_length), center=False, return_complex=True)
    power_db = 10 * torch.log10(spec.abs().pow(2) + 1e-10)
    logmel, mfcc = logmel40(wave, LOGMEL40), mfcc39(wave, p)
    T = min(power_db.shape[1], len(logmel), len(mfcc))
    return FeatureViews(times=frame_times(T, p).numpy(), power_db=power_db[:, :T].numpy(),
                        logmel=logmel[:T].numpy(), mfcc=mfcc[:T].numpy(),
                        freqs_hz=np.linspace(0, p.sample_rate / 2, power_db.shape[0]))


# ------------------------------------------------------------------------------- transcripts -> frame labels

ALIGN_SEED = 1  # built-in sentences of seed 1: ones the shipped model (trained on seed 0) never heard
ALIGN_EXAMPLES = 8  # built-in sentences to pick from (the first utterance of each of the first voices)
BOUNDARY_TOLERANCE_S = 0.020


@dataclass
class AlignmentLesson:
    """A built-in corpus sentence force-aligned by a phoneme run, next to eSpeak's exact phones."""

    text: str
    voice: str
    result: object                       # hwml.forced.ClipAlignment
    truth: list[str]                     # (T,) eSpeak's phone under each frame centre
    truth_segments: list[tuple[float, float, str]]
    rows: list[dict]                     # one per aligned phone: start, end, word, aligned, eSpeak, agree
    aligned_vs_truth: float              # share of frames whose aligned phone is eSpeak's
    free_vs_truth: float                 # the same for the free frame-by-frame prediction
    boundaries_within_20ms: float        # share of eSpeak's phone boundaries with an aligned one within 20 ms
    wave: np.ndarray                     # the utterance (float32) at sample_rate, to listen to
    sample_rate: int


def alignment_example(source, example: int = 1, seed: int = ALIGN_SEED) -> AlignmentLesson:
    """Speak built-in sentence `example` (1..ALIGN_EXAMPLES: the first utterance of that voice),
    force-align it to its text with `source` (a phoneme run folder or (model, config)) and
    compare with the phone times eSpeak used to make it."""
    import soundfile as sf

    from hwml.audio import FeatureParams, label_frames
    from hwml.corpus.transcribed import write_transcribed
    from hwml.forced import align_audio
    from hwml.importers import read_phn
    from hwml.phones import PHONES_39
    from hwml.phoneme import segments

    if isinstance(example, bool) or not isinstance(example, (int, float)) or not 1 <= int(example) <= ALIGN_EXAMPLES:
        raise HwmlError(f"pick a built-in sentence between 1 and {ALIGN_EXAMPLES}, got {example!r}")
    with tempfile.TemporaryDirectory(prefix="hwml-align-lesson-") as tmp:
        item = write_transcribed(tmp, "small", seed=seed, per_speaker=1, n_speakers=int(example))[-1]
        result = align_audio(source, item["wav"], item["text"], lexicon=Path(tmp) / "lexicon.txt")
        wave, sr = sf.read(item["wav"], dtype="float32")
        starts, ends, labels = read_phn(item["phn"])
    params = FeatureParams(kind="mfcc39")
    truth = [PHONES_39[i] if i >= 0 else "" for i in label_frames(len(result.aligned), starts, ends, labels, sr,
                                                                  params).tolist()]
    truth_arr, aligned = np.array(truth), np.array(result.aligned)
    rows = []
    for (start, end, phone), (a, b, _) in zip(result.phones, result.phone_frames):
        names, counts = np.unique(truth_arr[a:b], return_counts=True)
        rows.append({"start": start, "end": end, "word": result.word_of_frame[a], "aligned": phone,
                     "eSpeak": str(names[counts.argmax()]), "agree": round(float(np.mean(truth_arr[a:b] == phone)), 3)})
    changes = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    true_bounds = np.array([starts[i] / sr for i in changes])
    edges = np.array([start for start, _, _ in result.phones[1:]])
    hits = int((np.abs(true_bounds[:, None] - edges[None, :]).min(1) <= BOUNDARY_TOLERANCE_S + 1e-9).sum()) \
        if len(true_bounds) and len(edges) else 0
    return AlignmentLesson(
        text=item["text"], voice=item["speaker"], result=result, truth=truth,
        truth_segments=segments(truth, params), rows=rows,
        aligned_vs_truth=float(np.mean(aligned == truth_arr)),
        free_vs_truth=float(np.mean(np.array(result.free) == truth_arr)),
        boundaries_within_20ms=hits / max(1, len(true_bounds)), wave=wave, sample_rate=sr)


# ------------------------------------------------------------------------------- data formats

def describe_course_folder(folder, max_files: int = 8) -> list[dict]:
    """What a course folder holds: each file kind with its shape, dtype and a peek at the content."""
    from hwml.safeio import load_npy, load_tensor_file

    folder = Path(folder)
    if not folder.is_dir():
        raise HwmlError(f"{folder}: no such folder")
    rows: list[dict] = []
    shown_pt = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(folder))
        suffix = path.suffix.lower()
        if suffix == ".npy":
            arr = load_npy(path, mmap=True)
            peek = ", ".join(map(str, arr[:5].tolist())) if arr.ndim == 1 else f"row 0: {np.round(arr[0, :4], 3).tolist()} ..."
            rows.append({"file": rel, "holds": f"array {tuple(arr.shape)} {arr.dtype}", "peek": peek})
        elif suffix == ".pt":
            if shown_pt >= 2:
                continue
            shown_pt += 1
            t = load_tensor_file(path)
            rows.append({"file": rel, "holds": f"tensor {tuple(t.shape)} {t.dtype}",
                         "peek": f"frame 0: {[round(v, 3) for v in t[0, :4].tolist()]} ..."})
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows.append({"file": rel, "holds": "JSON with keys " + ", ".join(list(data)[:5]),
                         "peek": _json_peek(data)})
        elif suffix in (".txt", ".csv"):
            with path.open(encoding="utf-8", errors="replace") as fh:
                first = fh.readline().strip()
            rows.append({"file": rel, "holds": "text", "peek": first[:90] + ("..." if len(first) > 90 else "")})
        if len(rows) >= max_files:
            break
    pt_total = sum(1 for _ in folder.rglob("*.pt"))
    if pt_total > shown_pt:
        rows.append({"file": f"... and {pt_total - shown_pt} more .pt files", "holds": "", "peek": ""})
    return rows


def _json_peek(data) -> str:
    text = json.dumps(data)
    return text[:90] + ("..." if len(text) > 90 else "")


# ------------------------------------------------------------------------------- presets

PRESET_NOTES = {
    "phoneme": {
        "gaussian": "Lecture 2's generative model: one Gaussian per phone with a shared covariance, fitted in "
                    "closed form (no gradient steps). Its decision boundaries are linear.",
        "logreg": "Lecture 2's discriminative twin: the same linear boundaries, but learned by gradient "
                  "descent on the cross-entropy instead of from class means and one covariance.",
        "simple": "The course sample exactly: 429-1024-512-128-39 MLP, ReLU, Adam 1e-4, batch 64. The "
                  "reference every other preset is measured against (it returns logits, not log-softmax).",
        "medium": "Wider and deeper MLP with BatchNorm and dropout, wider context: more capacity, less "
                  "over-fitting, and more neighbouring frames to see each phone's transitions.",
        "strong": "More context frames and width again, tuned batch size and learning rate schedule.",
        "boss": "A sequence model over whole utterances (it sees the phone before and after), where the "
                "format keeps utterance boundaries; on timit_11 it falls back to the best MLP.",
    },
    "speaker": {
        "simple": "The course sample, batch-first: 40->80 prenet, one Transformer layer, mean pooling, "
                  "2-layer head, AdamW 1e-3 with 1000 warmup steps, 128-frame crops, batch 16.",
        "medium": "A tuned Transformer: pre-norm, 2 wider layers, per-bin input standardisation, larger "
                  "batches, a short warmup: more capacity that still trains in CPU minutes.",
        "strong": "Conformer blocks (convolution + attention: local spectral detail and global context), "
                  "batch-first with the length mask in attention and convolution, masked mean pooling.",
        "boss": "Conformer + self-attentive pooling (learns which frames matter; `--set pooling=asp` adds their spread) "
                "+ additive margin softmax (forces a margin between speakers: better embeddings).",
    },
}


def preset_table(kind: str) -> list[dict]:
    """Each preset of a task: what it changes relative to `simple`, and why."""
    from hwml.tasks import task_module

    presets = task_module(kind).PRESETS
    base = presets.get("simple", {})
    rows = []
    for name, settings in presets.items():
        changed = {k: v for k, v in settings.items() if base.get(k, object()) != v} if name != "simple" else settings
        rows.append({"preset": name, "why": PRESET_NOTES.get(kind, {}).get(name, ""),
                     "settings (vs simple)": ", ".join(f"{k}={v}" for k, v in changed.items()) or "-"})
    return rows


# ------------------------------------------------------------------------------- Lecture 2

def compare_models(data, presets=("gaussian", "logreg", "medium"), max_steps: int = 300,
                   max_seconds: float = 20.0, seed: int = 0, out_root=None, stop_event=None) -> list[dict]:
    """Train each preset briefly on the same frames and report validation accuracy and time:
    generative (closed form) vs discriminative (same linear boundaries, learned) vs deep."""
    from hwml.workflow import train_run

    rows = []
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        for preset in presets:
            if stop_event is not None and stop_event.is_set():
                break
            t0 = time.perf_counter()
            summary = train_run("phoneme", data, Path(tmp) / preset, preset=preset, max_steps=max_steps,
                                max_seconds=max_seconds, seed=seed, stop_event=stop_event)
            acc = summary.get("best_valid_acc")
            rows.append({"preset": preset, "kind": _model_family(preset),
                         "valid accuracy": round(acc, 4) if acc is not None else None,
                         "steps": summary.get("step"), "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def _model_family(preset: str) -> str:
    return {"gaussian": "generative (closed form)", "logreg": "discriminative, linear"}.get(preset, "deep (MLP / sequence)")


# ------------------------------------------------------------------------------- the pitfalls

@dataclass
class Pitfall:
    number: int
    title: str
    defect: str
    effect: str
    fix: str
    demo: callable = field(repr=False)


@dataclass
class DemoResult:
    """A demo's outcome: a headline and the measured numbers, one row per variant."""

    headline: str
    rows: list[dict]


def demo_time_major_conformer(seed: int = 0) -> DemoResult:
    """Change utterance 1 of a batch and watch utterance 0's output: it must not move."""
    import torch
    from conformer import ConformerBlock

    torch.manual_seed(seed)
    block = ConformerBlock(dim=32, dim_head=8, heads=4, conv_kernel_size=7).eval()
    x = torch.randn(2, 40, 32)
    y = x.clone()
    y[1] = torch.randn(40, 32)  # only utterance 1 changes
    with torch.no_grad():
        bf = (block(y)[0] - block(x)[0]).abs().max().item()
        tm = (block(y.transpose(0, 1)).transpose(0, 1)[0] - block(x.transpose(0, 1)).transpose(0, 1)[0]).abs().max().item()
    return DemoResult(
        f"Feeding (time, batch, dim) lets utterance 1 change utterance 0's output by {tm:.3f}; batch-first: {bf:.1e}.",
        [{"input layout": "(time, batch, dim) as in the notes", "max change of utterance 0": round(tm, 6)},
         {"input layout": "(batch, time, dim) as hwml", "max change of utterance 0": float(f"{bf:.3g}")}])


def demo_uninitialised_pooling(dim: int = 256) -> DemoResult:
    """What `torch.FloatTensor(dim, 1)` holds (whatever memory was there) vs hwml's explicit init."""
    import torch

    from hwml.models.speaker import SelfAttentivePool

    raw = torch.FloatTensor(dim, 1)  # the course's line, on purpose
    ours = SelfAttentivePool(dim).context.detach()

    def stats(t):
        finite = t[torch.isfinite(t)]
        return {"NaN or inf": int((~torch.isfinite(t)).sum()),
                "max |value|": float(f"{finite.abs().max().item():.3g}") if finite.numel() else None,
                "std": float(f"{finite.std().item():.3g}") if finite.numel() > 1 else None}

    a, b = stats(raw), stats(ours)
    return DemoResult(
        "Uninitialised memory is whatever was there: this time it held "
        f"{a['NaN or inf']} NaN/inf and values up to {a['max |value|']}; hwml draws N(0, 1/dim) (std {b['std']}).",
        [{"parameter": "torch.FloatTensor(dim, 1) (course notes)", **a},
         {"parameter": "hwml SelfAttentivePool.context", **b}])


def demo_best_model_copy(seed: int = 0) -> DemoResult:
    """Keep the 'best' weights with state_dict() vs a clone, then train one more step."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from hwml.train.engine import clone_state

    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    by_reference = model.state_dict()
    by_copy = clone_state(model)
    loss = F.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 3, (8,)))
    loss.backward()
    opt.step()  # a worse step after the "best" one
    now = model.weight.detach()
    ref_diff = (by_reference["weight"] - now).abs().max().item()
    copy_diff = (by_copy["weight"] - now).abs().max().item()
    return DemoResult(
        f"After one more step the 'best' state_dict() differs from the live weights by {ref_diff:.1g}: it IS the "
        f"live weights. The clone kept the best ones (differs by {copy_diff:.3f}).",
        [{"kept as": "model.state_dict() (course)", "difference from latest weights": ref_diff},
         {"kept as": "cloned tensors (hwml)", "difference from latest weights": round(copy_diff, 6)}])


def demo_padding_masks(seed: int = 0) -> DemoResult:
    """One utterance pooled alone, then padded with -20 to a batch's length, with and without a mask."""
    import torch

    from hwml.models.speaker import MeanPool, SelfAttentivePool

    torch.manual_seed(seed)
    x = torch.randn(1, 50, 16)
    padded = torch.cat([x, torch.full((1, 70, 16), -20.0)], dim=1)
    mask_alone = torch.ones(1, 50, dtype=torch.bool)
    mask_padded = torch.cat([mask_alone, torch.zeros(1, 70, dtype=torch.bool)], dim=1)
    sap = SelfAttentivePool(16).eval()
    with torch.no_grad():
        rows = []
        for name, pool in (("mean pooling", MeanPool()), ("attention pooling", sap)):
            alone = pool(x, mask_alone)
            unmasked = pool(padded, torch.ones(1, 120, dtype=torch.bool))
            masked = pool(padded, mask_padded)
            rows.append({"pooling": name, "change without mask": round((unmasked - alone).abs().max().item(), 4),
                         "change with mask": float(f"{(masked - alone).abs().max().item():.2g}")})
    return DemoResult(
        f"Padding an utterance with -20 moves its mean-pooled embedding by {rows[0]['change without mask']} "
        "when the padding counts as speech; with a length mask it does not move.", rows)


def demo_leaky_split(dataset=None, n_utts: int = 60, n_valid: int = 800, context: int = 11, seed: int = 0) -> DemoResult:
    """1-nearest-neighbour accuracy on context windows: validation frames drawn at random from
    all frames (their overlapping neighbours sit in training) vs held-out whole utterances."""
    import torch

    from hwml.audio import stack_context

    frames = _frames_with_utterances(dataset, n_utts, seed)
    g = torch.Generator().manual_seed(seed)
    feats, labels, utt_of = frames
    x = torch.cat([stack_context(feats[utt_of == u], context) for u in torch.unique(utt_of)])
    y = torch.cat([labels[utt_of == u] for u in torch.unique(utt_of)])
    u = torch.cat([utt_of[utt_of == v] for v in torch.unique(utt_of)])
    keep = y >= 0
    x, y, u = x[keep], y[keep], u[keep]
    # leaky: frames shuffled, then split
    perm = torch.randperm(len(x), generator=g)
    n_hold = max(1, len(x) // 5)
    leaky = _nn_accuracy(x[perm[n_hold:]], y[perm[n_hold:]], x[perm[:n_hold][:n_valid]], y[perm[:n_hold][:n_valid]])
    # honest: whole utterances held out
    utts = torch.unique(u)
    held = utts[torch.randperm(len(utts), generator=g)[: max(1, len(utts) // 5)]]
    is_held = torch.isin(u, held)
    vi = torch.nonzero(is_held).squeeze(1)
    vi = vi[torch.randperm(len(vi), generator=g)[:n_valid]]
    honest = _nn_accuracy(x[~is_held], y[~is_held], x[vi], y[vi])
    return DemoResult(
        f"The same 1-nearest-neighbour classifier scores {leaky:.1%} on a shuffled frame split but {honest:.1%} "
        "on held-out utterances: the shuffled split grades frames whose overlapping neighbours it trained on.",
        [{"validation split": "frames shuffled, then split (course)", "1-NN accuracy": round(leaky, 4)},
         {"validation split": "whole utterances held out (hwml)", "1-NN accuracy": round(honest, 4)}])


def _frames_with_utterances(dataset, n_utts: int, seed: int):
    """(feats (N, 39), labels (N,), utterance index (N,)) of up to n_utts utterances of a
    libriphone-format dataset, or of synthesised sentences when none is given."""
    import torch

    if dataset is not None and getattr(dataset.train, "offsets", None) is not None and dataset.train.stacked == 1:
        tr = dataset.train
        offs = tr.offsets
        n = min(n_utts, len(offs) - 1)
        pick = torch.randperm(len(offs) - 1, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        feats, labels, owner = [], [], []
        for j, i in enumerate(pick.tolist()):
            a, b = int(offs[i]), int(offs[i + 1])
            feats.append(torch.as_tensor(np.asarray(tr.feats[a:b]), dtype=torch.float32))
            labels.append(tr.labels[a:b])
            owner.append(torch.full((b - a,), j))
        return torch.cat(feats), torch.cat(labels), torch.cat(owner)
    raise HwmlError("this demo needs a phoneme dataset with utterance boundaries (libriphone format)")


def _nn_accuracy(xtr, ytr, xva, yva, chunk: int = 256) -> float:
    import torch

    correct = 0
    for i in range(0, len(xva), chunk):
        with torch.no_grad():
            d = torch.cdist(xva[i:i + chunk], xtr)
        correct += int((ytr[d.argmin(1)] == yva[i:i + chunk]).sum())
    return correct / max(len(xva), 1)


def demo_double_softmax(seed: int = 0, n_classes: int = 39) -> DemoResult:
    """CrossEntropyLoss on logits, on log_softmax outputs, and on softmax outputs."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    z = (3 * torch.randn(64, n_classes)).requires_grad_()
    t = torch.randint(0, n_classes, (64,))
    rows = []
    for name, f in (("logits (hwml)", lambda v: v), ("log_softmax, then CrossEntropyLoss (course)", lambda v: F.log_softmax(v, -1)),
                    ("softmax, then CrossEntropyLoss (the same slip, without the luck)", lambda v: F.softmax(v, -1))):
        z.grad = None
        loss = F.cross_entropy(f(z), t)
        loss.backward()
        rows.append({"model output": name, "loss": round(loss.item(), 4), "gradient norm": round(z.grad.norm().item(), 4)})
    return DemoResult(
        "log_softmax is idempotent (log_softmax(log_softmax(z)) = log_softmax(z)), so the course's double softmax "
        f"gives the same loss ({rows[1]['loss']} vs {rows[0]['loss']}) by luck; with softmax instead the loss is stuck "
        f"near log(C) = {np.log(n_classes):.2f} and the gradient shrinks {rows[0]['gradient norm'] / max(rows[2]['gradient norm'], 1e-12):.0f}x.",
        rows)


def demo_input_pipeline(n: int = 20000, dim: int = 429, batch: int = 64, n_batches: int = 60, seed: int = 0) -> DemoResult:
    """Frames per second of a per-frame Dataset + DataLoader vs indexing whole batches of a tensor."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, dim, generator=g), torch.randint(0, 39, (n,), generator=g)

    class Frames(Dataset):  # the course's pattern: one Python call per frame
        def __len__(self):
            return n

        def __getitem__(self, i):
            return x[i], y[i]

    loader = DataLoader(Frames(), batch_size=batch, shuffle=True, generator=g)
    t0 = time.perf_counter()
    for i, _ in zip(range(n_batches), loader):
        pass
    course = n_batches * batch / (time.perf_counter() - t0)
    big = 4096
    t0 = time.perf_counter()
    served = 0
    for _ in range(n_batches):
        idx = torch.randint(0, n, (big,), generator=g)
        xb, yb = x[idx], y[idx]
        served += min(len(xb), len(yb))
    ours = served / (time.perf_counter() - t0)
    return DemoResult(
        f"Indexing whole batches of one in-memory tensor serves {ours / course:.0f}x more frames per second "
        "than a Python __getitem__ per frame through a DataLoader.",
        [{"input pipeline": f"Dataset.__getitem__ per frame, DataLoader batch {batch} (course)", "frames/s": int(course)},
         {"input pipeline": f"index tensor, batch {big} (hwml)", "frames/s": int(ours)}])


def demo_early_stopping(epochs: int = 50, course_patience: int = 400, patience: int = 10, seed: int = 0) -> DemoResult:
    """A validation curve that peaks around epoch 12 and then slowly over-fits: when does each rule stop?"""
    e = np.arange(1, epochs + 1)
    noise = np.random.default_rng(seed).normal(0, 0.002, epochs)
    acc = 0.66 - 0.26 * np.exp(-e / 3) - 0.001 * np.maximum(0, e - 12) + noise  # learns, then over-fits

    def stop_epoch(limit):
        best, bad = -1.0, 0
        for e, a in enumerate(acc, start=1):
            best, bad = (a, 0) if a > best else (best, bad + 1)
            if bad >= limit:
                return e
        return None

    course, ours = stop_epoch(course_patience), stop_epoch(patience)
    return DemoResult(
        f"With {epochs} epochs the counter can reach at most {epochs}, so `early_stop_count >= {course_patience}` never "
        f"fires ({'never' if course is None else course}); a patience counted in validations stops at epoch {ours}.",
        [{"rule": f"early_stop_count >= {course_patience} (course)", "stops at epoch": course or f"never (ran all {epochs})"},
         {"rule": f"patience {patience} validations (hwml)", "stops at epoch": ours or f"never (ran all {epochs})"}])


_PAYLOAD_RAN: list[str] = []


def _payload(message: str) -> str:
    """What the demo's booby-trapped file runs when unpickled: it only records that it ran."""
    _PAYLOAD_RAN.append(message)
    return message


class _BoobyTrap:
    def __reduce__(self):
        return (_payload, ("code from the file ran during loading",))


def demo_unsafe_load() -> DemoResult:
    """A .pt whose pickle calls a function when loaded: unpickled plainly (what torch.load does
    without weights_only=True) it runs; hwml's loader refuses it before anything runs."""
    import torch

    from hwml.safeio import load_tensor_file

    _PAYLOAD_RAN.clear()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.pt"
        torch.save(_BoobyTrap(), path)
        try:
            load_tensor_file(path)
            refused = "loaded (!)"
        except HwmlError as exc:
            refused = f"refused: {exc}"
        ran_with_safe_loader = bool(_PAYLOAD_RAN)
        pickle.loads(pickle.dumps(_BoobyTrap()))  # a plain unpickle, as torch.load(weights_only=False) does
        ran_plain = bool(_PAYLOAD_RAN)
    return DemoResult(
        "A plain unpickle ran the file's code; hwml's loader (torch.load with weights_only=True, plain tensors only) "
        "refused the file and nothing ran. A real attacker's payload would call os.system instead.",
        [{"loader": "plain pickle / torch.load(weights_only=False)", "code ran": ran_plain, "result": "ran the payload"},
         {"loader": "hwml.safeio.load_tensor_file", "code ran": ran_with_safe_loader, "result": refused[:120]}])


def demo_seeding(seed: int = 0) -> DemoResult:
    """Crop starts drawn twice 'with the same seed': Python's random vs one torch.Generator."""
    import torch

    def course_crops():
        torch.manual_seed(seed)  # only torch is seeded, but the crops come from Python's random
        return [random.randint(0, 1000) for _ in range(5)]

    def hwml_crops():
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 1001, (5,), generator=g).tolist()

    a, b = course_crops(), course_crops()
    c, d = hwml_crops(), hwml_crops()
    return DemoResult(
        f"Two runs 'seeded' with torch.manual_seed({seed}) cropped differently ({a} vs {b}); "
        f"one generator seeded from the run's seed repeats exactly ({c}).",
        [{"crops drawn with": "random.randint, torch seeded (course)", "run 1": str(a), "run 2": str(b), "same": a == b},
         {"crops drawn with": "one torch.Generator (hwml)", "run 1": str(c), "run 2": str(d), "same": c == d}])


PITFALLS = [
    Pitfall(1, "Conformer fed time-major input",
            "The notes permute features to (length, batch, dim) before conformer.ConformerBlock, which expects (batch, time, dim).",
            "Attention mixes different utterances of the batch and the convolution runs across the batch: validation "
            "looks fine, test accuracy collapses.",
            "Batch-first everywhere; the mask goes to attention and convolution.", demo_time_major_conformer),
    Pitfall(2, "Uninitialised self-attention pooling vector",
            "nn.Parameter(torch.FloatTensor(dim, 1)) holds whatever memory was there, NaN included.",
            "Training may start from NaN or huge values: a run diverges or differs from run to run.",
            "Initialise every parameter explicitly.", demo_uninitialised_pooling),
    Pitfall(3, "'Best' model that is not the best",
            "best_state_dict = model.state_dict() keeps references to the live tensors.",
            "What is saved at the end is the latest weights, not the best ones.",
            "Clone the tensors (hwml.train.engine.clone_state).", demo_best_model_copy),
    Pitfall(4, "Padding without masks",
            "Short utterances are padded with -20 and attention and pooling treat the padding as speech.",
            "An utterance's embedding depends on how long the others in its batch are.",
            "Carry a length mask through encoder and pooling.", demo_padding_masks),
    Pitfall(5, "Leaky validation split for frames",
            "Shuffling individual frames before splitting puts overlapping 11-frame windows of one utterance in "
            "both train and validation.",
            "Validation accuracy overstates test accuracy.",
            "Split by utterance (or speaker) wherever boundaries are known; say so where they are not (timit_11).",
            demo_leaky_split),
    Pitfall(6, "Double softmax",
            "The HW2 model returns log_softmax and CrossEntropyLoss applies log_softmax again.",
            "Harmless only because log_softmax is idempotent; the same slip with softmax stalls training.",
            "Models return logits.", demo_double_softmax),
    Pitfall(7, "Slow input pipelines",
            "One torch.load per utterance per step (HW4); a Python __getitem__ per frame at batch 64 (HW2).",
            "The CPU spends its time in Python, not in the model.",
            "Features in memory as contiguous tensors, whole batches by index.", demo_input_pipeline),
    Pitfall(8, "Uncapped early stopping",
            "early_stop_count >= 400 with 50 epochs.",
            "It never triggers.",
            "A patience counted in validations, small enough to fire.", demo_early_stopping),
    Pitfall(9, "torch.load without weights_only=True",
            "Uploaded .pt files are unpickled.",
            "A crafted file runs arbitrary code on the server.",
            "torch.load(weights_only=True), plain tensors only; checkpoints as safetensors + JSON.", demo_unsafe_load),
    Pitfall(10, "Python random for crops with only torch seeded",
            "Crops come from Python's random module while only torch is seeded.",
            "Two runs with the same seed differ: results cannot be reproduced.",
            "Seed everything from one seed, or draw everything from one generator.", demo_seeding),
]


def run_pitfall_demo(number: int, dataset=None) -> DemoResult:
    """Run pitfall `number`'s demo (the leaky-split one needs a libriphone-format dataset)."""
    for p in PITFALLS:
        if p.number == number:
            return p.demo(dataset) if p.demo is demo_leaky_split else p.demo()
    raise HwmlError(f"no pitfall number {number}")
