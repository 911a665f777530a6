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
from hwml.i18n import t

if TYPE_CHECKING:
    import torch

EXAMPLE_SENTENCE = "She sells bright yellow shells by the quiet seashore."


# ------------------------------------------------------------------------------- audio -> features


@dataclass
class Utterance:
    """A synthesised utterance at 16 kHz with eSpeak's phone timings (seconds)."""

    text: str
    wave: torch.Tensor  # (samples,) float32 at 16 kHz
    sample_rate: int
    phones: list[tuple[str, float, float]]  # (eSpeak phone, start s, end s)

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate


def example_utterance(text: str = EXAMPLE_SENTENCE, voice: str = "en-us") -> Utterance:
    """Speak `text` with the built-in synthesiser (eSpeak NG, no download) and resample to 16 kHz."""
    import torch

    from hwml.audio.decode import wave_to_16k
    from hwml.audio.params import SAMPLE_RATE
    from hwml.corpus.espeak import synthesize

    syn = synthesize(text, voice)
    wave = wave_to_16k(torch.from_numpy(np.asarray(syn.wave, dtype=np.float32)), syn.sample_rate)
    n = len(syn.wave)
    bounds = [s for _, s in syn.phones] + [n]
    phones = [
        (name, start / syn.sample_rate, bounds[i + 1] / syn.sample_rate)
        for i, (name, start) in enumerate(syn.phones)
        if bounds[i + 1] > start
    ]
    return Utterance(text, wave, SAMPLE_RATE, phones)


@dataclass
class FeatureViews:
    """Every stage between a wave and the course's features, ready to plot."""

    times: np.ndarray  # (T,) frame centres in seconds
    power_db: np.ndarray  # (n_fft/2+1, T) linear-frequency power spectrogram in dB
    logmel: np.ndarray  # (T, 40) HW4 features
    mfcc: np.ndarray  # (T, 39) HW2 features (13 MFCC + deltas + delta-deltas, normalised)
    freqs_hz: np.ndarray  # (n_fft/2+1,) frequency of each spectrogram row


def feature_views(wave: torch.Tensor) -> FeatureViews:
    """The spectrogram with the very framing hwml.audio uses, then log-mel and MFCC-39 from hwml.audio."""
    import torch

    from hwml.audio.features import logmel40, mfcc39
    from hwml.audio.frames import frame_times
    from hwml.audio.params import LOGMEL40, MFCC39

    p = MFCC39
    wave = torch.as_tensor(wave, dtype=torch.float32)
    spec = torch.stft(
        wave,
        n_fft=p.n_fft,
        hop_length=p.hop_length,
        win_length=p.win_length,
        window=torch.hann_window(p.win_length),
        center=False,
        return_complex=True,
    )
    power_db = 10 * torch.log10(spec.abs().pow(2) + 1e-10)
    logmel, mfcc = logmel40(wave, LOGMEL40), mfcc39(wave, p)
    T = min(power_db.shape[1], len(logmel), len(mfcc))
    return FeatureViews(
        times=frame_times(T, p).numpy(),
        power_db=power_db[:, :T].numpy(),
        logmel=logmel[:T].numpy(),
        mfcc=mfcc[:T].numpy(),
        freqs_hz=np.linspace(0, p.sample_rate / 2, power_db.shape[0]),
    )


# ------------------------------------------------------------------------------- transcripts -> frame labels

ALIGN_SEED = 1  # built-in sentences of seed 1: ones the shipped model (trained on seed 0) never heard
ALIGN_EXAMPLES = 8  # built-in sentences to pick from (the first utterance of each of the first voices)
BOUNDARY_TOLERANCE_S = 0.020


@dataclass
class AlignmentLesson:
    """A built-in corpus sentence force-aligned by a phoneme run, next to eSpeak's exact phones."""

    text: str
    voice: str
    result: object  # hwml.forced.ClipAlignment
    truth: list[str]  # (T,) eSpeak's phone under each frame centre
    truth_segments: list[tuple[float, float, str]]
    rows: list[dict]  # one per aligned phone: start, end, word, aligned, eSpeak, agree
    aligned_vs_truth: float  # share of frames whose aligned phone is eSpeak's
    free_vs_truth: float  # the same for the free frame-by-frame prediction
    boundaries_within_20ms: float  # share of eSpeak's phone boundaries with an aligned one within 20 ms
    wave: np.ndarray  # the utterance (float32) at sample_rate, to listen to
    sample_rate: int


def alignment_example(source, example: int = 1, seed: int = ALIGN_SEED) -> AlignmentLesson:
    """Speak built-in sentence `example` (1..ALIGN_EXAMPLES: the first utterance of that voice),
    force-align it to its text with `source` (a phoneme run folder or (model, config)) and
    compare with the phone times eSpeak used to make it."""
    import soundfile as sf

    from hwml.align.clip import align_audio
    from hwml.audio.frames import label_frames, label_segments
    from hwml.audio.params import FeatureParams
    from hwml.corpus.transcribed import write_transcribed
    from hwml.data.phones import PHONES_39
    from hwml.importers import read_phn

    if isinstance(example, bool) or not isinstance(example, (int, float)) or not 1 <= int(example) <= ALIGN_EXAMPLES:
        raise HwmlError(f"pick a built-in sentence between 1 and {ALIGN_EXAMPLES}, got {example!r}")
    with tempfile.TemporaryDirectory(prefix="hwml-align-lesson-") as tmp:
        item = write_transcribed(tmp, "small", seed=seed, per_speaker=1, n_speakers=int(example))[-1]
        result = align_audio(source, item["wav"], item["text"], lexicon=Path(tmp) / "lexicon.txt")
        wave, sr = sf.read(item["wav"], dtype="float32")
        starts, ends, labels = read_phn(item["phn"])
    params = FeatureParams(kind="mfcc39")
    truth = [
        PHONES_39[i] if i >= 0 else ""
        for i in label_frames(len(result.aligned), starts, ends, labels, sr, params).tolist()
    ]
    truth_arr, aligned = np.array(truth), np.array(result.aligned)
    rows = []
    for (start, end, phone), (a, b, _) in zip(result.phones, result.phone_frames):
        names, counts = np.unique(truth_arr[a:b], return_counts=True)
        rows.append(
            {
                "start": start,
                "end": end,
                "word": result.word_of_frame[a],
                "aligned": phone,
                "eSpeak": str(names[counts.argmax()]),
                "agree": round(float(np.mean(truth_arr[a:b] == phone)), 3),
            }
        )
    changes = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    true_bounds = np.array([starts[i] / sr for i in changes])
    edges = np.array([start for start, _, _ in result.phones[1:]])
    hits = (
        int((np.abs(true_bounds[:, None] - edges[None, :]).min(1) <= BOUNDARY_TOLERANCE_S + 1e-9).sum())
        if len(true_bounds) and len(edges)
        else 0
    )
    return AlignmentLesson(
        text=item["text"],
        voice=item["speaker"],
        result=result,
        truth=truth,
        truth_segments=label_segments(truth, params),
        rows=rows,
        aligned_vs_truth=float(np.mean(aligned == truth_arr)),
        free_vs_truth=float(np.mean(np.array(result.free) == truth_arr)),
        boundaries_within_20ms=hits / max(1, len(true_bounds)),
        wave=wave,
        sample_rate=sr,
    )


# ------------------------------------------------------------------------------- data formats


def describe_course_folder(folder, max_files: int = 8, lang: str = "en") -> list[dict]:
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
            peek = (
                ", ".join(map(str, arr[:5].tolist()))
                if arr.ndim == 1
                else t("formats.row0", lang, values=np.round(arr[0, :4], 3).tolist())
            )
            rows.append(
                {"file": rel, "holds": t("formats.array", lang, shape=tuple(arr.shape), dtype=arr.dtype), "peek": peek}
            )
        elif suffix == ".pt":
            if shown_pt >= 2:
                continue
            shown_pt += 1
            x = load_tensor_file(path)
            rows.append(
                {
                    "file": rel,
                    "holds": t("formats.tensor", lang, shape=tuple(x.shape), dtype=x.dtype),
                    "peek": t("formats.frame0", lang, values=[round(v, 3) for v in x[0, :4].tolist()]),
                }
            )
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows.append(
                {
                    "file": rel,
                    "holds": t("formats.json", lang, keys=", ".join(list(data)[:5])),
                    "peek": _json_peek(data),
                }
            )
        elif suffix in (".txt", ".csv"):
            with path.open(encoding="utf-8", errors="replace") as fh:
                first = fh.readline().strip()
            rows.append(
                {"file": rel, "holds": t("formats.text", lang), "peek": first[:90] + ("..." if len(first) > 90 else "")}
            )
        if len(rows) >= max_files:
            break
    pt_total = sum(1 for _ in folder.rglob("*.pt"))
    if pt_total > shown_pt:
        rows.append({"file": t("formats.more_pt", lang, n=pt_total - shown_pt), "holds": "", "peek": ""})
    return rows


def _json_peek(data) -> str:
    text = json.dumps(data)
    return text[:90] + ("..." if len(text) > 90 else "")


# ------------------------------------------------------------------------------- presets

PRESET_NOTES = {
    kind: {name: f"preset.{kind}.{name}" for name in names}  # catalogue keys (hwml/i18n)
    for kind, names in (
        ("phoneme", ("gaussian", "logreg", "simple", "medium", "strong", "boss")),
        ("speaker", ("simple", "medium", "strong", "boss")),
    )
}


def preset_table(kind: str, lang: str = "en") -> list[dict]:
    """Each preset of a task: what it changes relative to `simple`, and why."""
    from hwml.api import task_presets

    presets = task_presets(kind).PRESETS
    base = presets.get("simple", {})
    rows = []
    for name, settings in presets.items():
        changed = {k: v for k, v in settings.items() if base.get(k, object()) != v} if name != "simple" else settings
        note = PRESET_NOTES.get(kind, {}).get(name)
        rows.append(
            {
                t("col.preset", lang): name,
                t("col.why", lang): t(note, lang) if note else "",
                t("col.settings", lang): ", ".join(f"{k}={v}" for k, v in changed.items()) or "-",
            }
        )
    return rows


# ------------------------------------------------------------------------------- Lecture 2


def compare_models(
    data,
    presets=("gaussian", "logreg", "medium"),
    max_steps: int = 300,
    max_seconds: float = 20.0,
    seed: int = 0,
    out_root=None,
    stop_event=None,
    lang: str = "en",
) -> list[dict]:
    """Train each preset briefly on the same frames and report validation accuracy and time:
    generative (closed form) vs discriminative (same linear boundaries, learned) vs deep."""
    from hwml.api import train_run

    rows = []
    with tempfile.TemporaryDirectory(dir=out_root) as tmp:
        for preset in presets:
            if stop_event is not None and stop_event.is_set():
                break
            t0 = time.perf_counter()
            summary = train_run(
                "phoneme",
                data,
                Path(tmp) / preset,
                preset=preset,
                max_steps=max_steps,
                max_seconds=max_seconds,
                seed=seed,
                stop_event=stop_event,
            )
            acc = summary.get("best_valid_acc")
            rows.append(
                {
                    t("col.preset", lang): preset,
                    t("col.kind", lang): t(_model_family(preset), lang),
                    t("col.valid_acc", lang): round(acc, 4) if acc is not None else None,
                    t("col.steps", lang): summary.get("step"),
                    t("col.seconds", lang): round(time.perf_counter() - t0, 2),
                }
            )
    return rows


def _model_family(preset: str) -> str:
    """The catalogue key of a preset's model family."""
    return {"gaussian": "family.generative", "logreg": "family.linear"}.get(preset, "family.deep")


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


def demo_time_major_conformer(seed: int = 0, lang: str = "en") -> DemoResult:
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
        tm = (
            (block(y.transpose(0, 1)).transpose(0, 1)[0] - block(x.transpose(0, 1)).transpose(0, 1)[0])
            .abs()
            .max()
            .item()
        )
    layout, change = t("demo.1.col.layout", lang), t("demo.1.col.change", lang)
    return DemoResult(
        t("demo.1.headline", lang, tm=f"{tm:.3f}", bf=f"{bf:.1e}"),
        [
            {layout: t("demo.1.row.course", lang), change: round(tm, 6)},
            {layout: t("demo.1.row.hwml", lang), change: float(f"{bf:.3g}")},
        ],
    )


def demo_uninitialised_pooling(dim: int = 256, lang: str = "en") -> DemoResult:
    """What `torch.FloatTensor(dim, 1)` holds (whatever memory was there) vs hwml's explicit init."""
    import torch

    from hwml.models.speaker import SelfAttentivePool

    raw = torch.FloatTensor(dim, 1)  # the course's line, on purpose
    ours = SelfAttentivePool(dim).context.detach()

    def stats(x):
        finite = x[torch.isfinite(x)]
        return {
            "nan": int((~torch.isfinite(x)).sum()),
            "max": float(f"{finite.abs().max().item():.3g}") if finite.numel() else None,
            "std": float(f"{finite.std().item():.3g}") if finite.numel() > 1 else None,
        }

    a, b = stats(raw), stats(ours)
    cols = {k: t(f"demo.2.col.{k}", lang) for k in ("nan", "max", "std")}
    return DemoResult(
        t("demo.2.headline", lang, nan=a["nan"], max=a["max"], std=b["std"]),
        [
            {t("demo.2.col.parameter", lang): t("demo.2.row.course", lang), **{cols[k]: v for k, v in a.items()}},
            {t("demo.2.col.parameter", lang): "hwml SelfAttentivePool.context", **{cols[k]: v for k, v in b.items()}},
        ],
    )


def demo_best_model_copy(seed: int = 0, lang: str = "en") -> DemoResult:
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
    kept, diff = t("demo.3.col.kept", lang), t("demo.3.col.diff", lang)
    return DemoResult(
        t("demo.3.headline", lang, ref=f"{ref_diff:.1g}", copy=f"{copy_diff:.3f}"),
        [
            {kept: t("demo.3.row.course", lang), diff: ref_diff},
            {kept: t("demo.3.row.hwml", lang), diff: round(copy_diff, 6)},
        ],
    )


def demo_padding_masks(seed: int = 0, lang: str = "en") -> DemoResult:
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
        changes = []
        for name, pool in (("mean", MeanPool()), ("attention", sap)):
            alone = pool(x, mask_alone)
            unmasked = pool(padded, torch.ones(1, 120, dtype=torch.bool))
            masked = pool(padded, mask_padded)
            changes.append(round((unmasked - alone).abs().max().item(), 4))
            rows.append(
                {
                    t("demo.4.col.pooling", lang): t(f"demo.4.row.{name}", lang),
                    t("demo.4.col.without", lang): changes[-1],
                    t("demo.4.col.with", lang): float(f"{(masked - alone).abs().max().item():.2g}"),
                }
            )
    return DemoResult(t("demo.4.headline", lang, change=changes[0]), rows)


def demo_leaky_split(
    dataset=None, n_utts: int = 60, n_valid: int = 800, context: int = 11, seed: int = 0, lang: str = "en"
) -> DemoResult:
    """1-nearest-neighbour accuracy on context windows: validation frames drawn at random from
    all frames (their overlapping neighbours sit in training) vs held-out whole utterances."""
    import torch

    from hwml.audio.frames import stack_context

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
    split, acc = t("demo.5.col.split", lang), t("demo.5.col.acc", lang)
    return DemoResult(
        t("demo.5.headline", lang, leaky=f"{leaky:.1%}", honest=f"{honest:.1%}"),
        [
            {split: t("demo.5.row.course", lang), acc: round(leaky, 4)},
            {split: t("demo.5.row.hwml", lang), acc: round(honest, 4)},
        ],
    )


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
    raise HwmlError(t("demo.5.needs_libriphone"))


def _nn_accuracy(xtr, ytr, xva, yva, chunk: int = 256) -> float:
    import torch

    correct = 0
    for i in range(0, len(xva), chunk):
        with torch.no_grad():
            d = torch.cdist(xva[i : i + chunk], xtr)
        correct += int((ytr[d.argmin(1)] == yva[i : i + chunk]).sum())
    return correct / max(len(xva), 1)


def demo_double_softmax(seed: int = 0, n_classes: int = 39, lang: str = "en") -> DemoResult:
    """CrossEntropyLoss on logits, on log_softmax outputs, and on softmax outputs."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    z = (3 * torch.randn(64, n_classes)).requires_grad_()
    target = torch.randint(0, n_classes, (64,))
    rows, losses, norms = [], [], []
    for name, f in (
        ("logits", lambda v: v),
        ("log_softmax", lambda v: F.log_softmax(v, -1)),
        ("softmax", lambda v: F.softmax(v, -1)),
    ):
        z.grad = None
        loss = F.cross_entropy(f(z), target)
        loss.backward()
        losses.append(round(loss.item(), 4))
        norms.append(round(z.grad.norm().item(), 4))
        rows.append(
            {
                t("demo.6.col.output", lang): t(f"demo.6.row.{name}", lang),
                t("demo.6.col.loss", lang): losses[-1],
                t("demo.6.col.grad", lang): norms[-1],
            }
        )
    return DemoResult(
        t(
            "demo.6.headline",
            lang,
            double=losses[1],
            logits=losses[0],
            logc=f"{np.log(n_classes):.2f}",
            shrink=f"{norms[0] / max(norms[2], 1e-12):.0f}",
        ),
        rows,
    )


def demo_input_pipeline(
    n: int = 20000, dim: int = 429, batch: int = 64, n_batches: int = 60, seed: int = 0, lang: str = "en"
) -> DemoResult:
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
    for _ in zip(range(n_batches), loader):
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
    pipeline, rate = t("demo.7.col.pipeline", lang), t("demo.7.col.rate", lang)
    return DemoResult(
        t("demo.7.headline", lang, times=f"{ours / course:.0f}"),
        [
            {pipeline: t("demo.7.row.course", lang, batch=batch), rate: int(course)},
            {pipeline: t("demo.7.row.hwml", lang, batch=big), rate: int(ours)},
        ],
    )


def demo_early_stopping(
    epochs: int = 50, course_patience: int = 400, patience: int = 10, seed: int = 0, lang: str = "en"
) -> DemoResult:
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
    rule, stops, never = (
        t("demo.8.col.rule", lang),
        t("demo.8.col.stops", lang),
        t("demo.8.never_ran", lang, epochs=epochs),
    )
    return DemoResult(
        t(
            "demo.8.headline",
            lang,
            epochs=epochs,
            limit=course_patience,
            course=t("demo.8.never", lang) if course is None else course,
            ours=ours,
        ),
        [
            {rule: t("demo.8.row.course", lang, limit=course_patience), stops: course or never},
            {rule: t("demo.8.row.hwml", lang, patience=patience), stops: ours or never},
        ],
    )


_PAYLOAD_RAN: list[str] = []


def _payload(message: str) -> str:
    """What the demo's booby-trapped file runs when unpickled: it only records that it ran."""
    _PAYLOAD_RAN.append(message)
    return message


class _BoobyTrap:
    def __reduce__(self):
        return (_payload, ("code from the file ran during loading",))


def demo_unsafe_load(lang: str = "en") -> DemoResult:
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
            refused = t("demo.9.loaded", lang)
        except HwmlError as exc:
            refused = t("demo.9.refused", lang, error=exc)
        ran_with_safe_loader = bool(_PAYLOAD_RAN)
        pickle.loads(pickle.dumps(_BoobyTrap()))  # a plain unpickle, as torch.load(weights_only=False) does
        ran_plain = bool(_PAYLOAD_RAN)
    loader, ran, result = t("demo.9.col.loader", lang), t("demo.9.col.ran", lang), t("demo.9.col.result", lang)
    return DemoResult(
        t("demo.9.headline", lang),
        [
            {
                loader: "plain pickle / torch.load(weights_only=False)",
                ran: ran_plain,
                result: t("demo.9.ran_payload", lang),
            },
            {loader: "hwml.safeio.load_tensor_file", ran: ran_with_safe_loader, result: refused[:120]},
        ],
    )


def demo_seeding(seed: int = 0, lang: str = "en") -> DemoResult:
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
    drawn, run1, run2, same = (t(f"demo.10.col.{k}", lang) for k in ("drawn", "run1", "run2", "same"))
    return DemoResult(
        t("demo.10.headline", lang, seed=seed, a=a, b=b, c=c),
        [
            {drawn: t("demo.10.row.course", lang), run1: str(a), run2: str(b), same: a == b},
            {drawn: t("demo.10.row.hwml", lang), run1: str(c), run2: str(d), same: c == d},
        ],
    )


PITFALL_DEMOS = [
    demo_time_major_conformer,
    demo_uninitialised_pooling,
    demo_best_model_copy,
    demo_padding_masks,
    demo_leaky_split,
    demo_double_softmax,
    demo_input_pipeline,
    demo_early_stopping,
    demo_unsafe_load,
    demo_seeding,
]
# The words of each pitfall live in the catalogues (hwml/i18n: pitfall.N.title / .defect / .effect / .fix).
PITFALLS = [
    Pitfall(n, t(f"pitfall.{n}.title"), t(f"pitfall.{n}.defect"), t(f"pitfall.{n}.effect"), t(f"pitfall.{n}.fix"), demo)
    for n, demo in enumerate(PITFALL_DEMOS, start=1)
]


def pitfall_text(number: int, part: str, lang: str = "en") -> str:
    """A pitfall's title, defect, effect or fix in `lang`."""
    return t(f"pitfall.{number}.{part}", lang)


def run_pitfall_demo(number: int, dataset=None, lang: str = "en") -> DemoResult:
    """Run pitfall `number`'s demo (the leaky-split one needs a libriphone-format dataset); its
    headline and table in `lang`."""
    for p in PITFALLS:
        if p.number == number:
            return p.demo(dataset, lang=lang) if p.demo is demo_leaky_split else p.demo(lang=lang)
    raise HwmlError(f"no pitfall number {number}")
