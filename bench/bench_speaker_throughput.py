"""HW4 input pipeline and training-step throughput: the course's loop against hwml's, same model.

The course loop (pitfalls 7, 10): a Dataset that `torch.load`s one `.pt` file per utterance per
step (written to a temp dir first; weights_only=True here, pitfall 9), Python `random` crops,
`pad_sequence(..., padding_value=-20)`, a DataLoader at batch 16 (num_workers=0: the course's
worker processes move the same file reads to other cores, which 2 shared cores do not have). hwml: the whole set in one
tensor, crops by one gather from one seeded generator, a length mask. Both train the same
model (the `simple` preset = the course's Classifier) at batch 16, in this process, one after
the other. Prints JSON lines: utterances/s of each input path alone and of full training steps,
and the ratios. (A course-size HW4 set loaded from a folder: `bench_data_scale.py --hw4`.)

    python bench/bench_speaker_throughput.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hwml.data.types import Dataset as HwmlDataset  # noqa: E402
from hwml.data.types import UtteranceSet  # noqa: E402
from hwml.models import build_model  # noqa: E402
from hwml.speaker.task import make_task  # noqa: E402


def course_lengths(n: int, gen: torch.Generator) -> torch.Tensor:
    """Course-like mel_len: 100 + Exp(350) frames, at most 4000 (mean ~450, median ~345, 90% under
    ~900): the course's own examples (mel_len 435, 123) and its 128-frame crops. The real
    histogram is not published; every size figure scales linearly with the mean."""
    return (100 + torch.empty(n).exponential_(1 / 350.0, generator=gen)).long().clamp(max=4000)


def synthetic_set(n_utts: int, n_speakers: int, seed: int = 0) -> UtteranceSet:
    gen = torch.Generator().manual_seed(seed)
    lengths = course_lengths(n_utts, gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    feats = torch.empty(int(offsets[-1]), 40)
    for i in range(0, len(feats), 1 << 22):  # chunked: no second full-size temporary
        feats[i : i + (1 << 22)].normal_(generator=gen).mul_(3.0).sub_(8.0)
    labels = torch.arange(n_utts) % n_speakers
    return UtteranceSet(
        feats,
        offsets,
        [f"uttr-{i:032x}.pt" for i in range(n_utts)],
        labels,
        [f"id{10000 + i}" for i in range(n_speakers)],
    )


# ------------------------------------------------------------------ the course's input pipeline


class CourseDataset(Dataset):
    """The sample code's myDataset: one file read and one Python-random crop per item."""

    def __init__(self, data_dir: Path, items: list[tuple[str, int]], segment_len: int = 128):
        self.data_dir, self.data, self.segment_len = data_dir, items, segment_len

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        feat_path, speaker = self.data[index]
        mel = torch.load(self.data_dir / feat_path, weights_only=True)
        if len(mel) > self.segment_len:
            start = random.randint(0, len(mel) - self.segment_len)
            mel = torch.FloatTensor(mel[start : start + self.segment_len])
        else:
            mel = torch.FloatTensor(mel)
        return mel, torch.FloatTensor([speaker]).long()


def collate_batch(batch):
    mel, speaker = zip(*batch)
    mel = pad_sequence(mel, batch_first=True, padding_value=-20)
    return mel, torch.FloatTensor(speaker).long()


def course_batches(utts: UtteranceSet, tmp: Path, batch_size: int):
    """Write every utterance as uttr-*.pt, then an endless course DataLoader over them."""
    items = []
    for i, name in enumerate(utts.utt_ids):
        torch.save(utts.utterance(i).clone(), tmp / name)
        items.append((name, int(utts.labels[i])))
    loader = DataLoader(
        CourseDataset(tmp, items),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=0,
        collate_fn=collate_batch,
    )
    while True:
        yield from loader


# ----------------------------------------------------------------------------------- measuring


def rate(fn, n: int) -> tuple[float, float]:
    """Calls per CPU second and per wall-clock second of fn over n calls (after a warm-up call).

    CPU seconds (this process, one thread) are what other load on a shared machine cannot
    inflate; on an idle machine the two agree."""
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def compare(n_utts: int, n_speakers: int, steps: int, batches: int) -> list[dict]:
    utts = synthetic_set(n_utts, n_speakers)
    ds = HwmlDataset("speaker", "hw4", "synthetic", utts)
    task = make_task(ds, "simple", {"valid_fraction": 0.0}, seed=0)
    torch.manual_seed(0)
    random.seed(0)
    model = build_model(task.model_spec())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    bs = task.settings["batch_size"]
    gen = torch.Generator().manual_seed(0)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        course = course_batches(utts, Path(tmp), bs)

        def course_step():
            mels, labels = next(course)
            loss = F.cross_entropy(model(mels), labels)  # the course model sees padding as speech
            opt.zero_grad()
            loss.backward()
            opt.step()

        def hwml_step():
            loss, _ = task.loss(model, task.train_batch(gen, "cpu"))
            opt.zero_grad()
            loss.backward()
            opt.step()

        for name, course_fn, hwml_fn, n in (
            ("speaker_input_pipeline", lambda: next(course), lambda: task.train_batch(gen, "cpu"), batches),
            ("speaker_train_step", course_step, hwml_step, steps),
        ):
            c1, h, c2 = rate(course_fn, n), rate(hwml_fn, n), rate(course_fn, n)  # course twice: brackets drift
            c = [(a + b) / 2 for a, b in zip(c1, c2)]
            out.append(
                {
                    "bench": name,
                    "model": "simple",
                    "utterances": n_utts,
                    "batch_size": bs,
                    "calls": n,
                    "course_utts_per_cpu_s": round(c[0] * bs, 1),
                    "hwml_utts_per_cpu_s": round(h[0] * bs, 1),
                    "ratio": round(h[0] / c[0], 2),
                    "course_utts_per_s": round(c[1] * bs, 1),
                    "hwml_utts_per_s": round(h[1] * bs, 1),
                    "ratio_wall": round(h[1] / c[1], 2),
                    "threads": torch.get_num_threads(),
                    "load_avg": [round(x, 2) for x in os.getloadavg()],
                }
            )
        # A step is input + model: with the model's cost shared, the step ratio cannot pass
        # 1 / (1 - the input pipeline's share of the course's step).
        share = out[1]["course_utts_per_cpu_s"] / out[0]["course_utts_per_cpu_s"]
        out[1].update(course_input_share=round(share, 3), ratio_bound_if_input_free=round(1 / (1 - share), 2))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few seconds (the test suite runs this)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        lines = compare(n_utts=96, n_speakers=8, steps=4, batches=4)
    else:
        lines = compare(n_utts=3000, n_speakers=600, steps=60, batches=100)
    for line in lines:
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
