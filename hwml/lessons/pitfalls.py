"""The defects of the course's sample code, each run next to hwml's fix on small tensors: a class
sees the effect rather than being told about it. All demos are seeded and take well under a
second. The words of each pitfall live in the catalogues (hwml/i18n: pitfall.N.title, .defect,
.effect, .fix); code comments and tests elsewhere cite them by number ("pitfall 3")."""

from __future__ import annotations

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
    pass


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

    from hwml.train.optim import clone_state

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
