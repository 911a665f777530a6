"""Whole utterances through a speaker model: scores or embeddings of every utterance, on parallel
threads, long ones as half-overlapping windows whose rows are averaged."""

from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.data.types import UtteranceSet
from hwml.machine import single_thread
from hwml.speaker.batches import as_utterances, average_rows, window_batches
from hwml.speaker.presets import SETTINGS


def _inference_settings(config: dict | None) -> tuple[int, int]:
    s = (config or {}).get("settings", {})
    return int(s.get("infer_window", SETTINGS["infer_window"])), int(s.get("infer_frames", SETTINGS["infer_frames"]))


def per_utterance(
    fn,
    model: nn.Module,
    utts: UtteranceSet,
    config: dict | None,
    dim: int,
    indices: Tensor | None = None,
    stop=lambda: False,
) -> Tensor | None:
    """fn's rows for every whole utterance (or those at `indices`, in that order), window rows
    averaged; None when `stop()` turned true half-way (checked before every batch).

    On CPU the batches are spread over torch.get_num_threads() Python threads, each running
    torch on one intra-op thread: these small-width models are many short ops, and on a busy
    machine intra-op threads spend most of their time waiting for each other (README:
    Benchmarks); a batch per thread needs no per-op synchronisation.
    """
    from concurrent.futures import ThreadPoolExecutor

    window, frames = _inference_settings(config)
    device = next(model.parameters()).device
    batches = window_batches(utts, indices, window, frames)
    take = threading.Lock()
    out = torch.zeros(len(utts) if indices is None else len(indices), dim)

    def drain() -> list:
        done = []
        with torch.no_grad():  # grad mode is per thread
            while not stop() and (b := _next_locked(batches, take)) is not None:
                rows = fn(b.x.to(device), b.mask.to(device)).float().cpu()
                done.append((b.utts, average_rows(rows, b.owner, len(b.utts))))
        return done

    was_training = model.training
    model.eval()
    try:
        workers = torch.get_num_threads() if device.type == "cpu" else 1
        with single_thread() if device.type == "cpu" else contextlib.nullcontext(), ThreadPoolExecutor(workers) as pool:
            for job in [pool.submit(drain) for _ in range(workers)]:
                for idx, rows in job.result():
                    out[idx] = rows
    finally:
        model.train(was_training)
    return None if stop() else out


def _next_locked(it, lock: threading.Lock):
    with lock:
        return next(it, None)


def embed(model: nn.Module, feats, config: dict | None = None) -> Tensor:
    """(N, D) L2-normalised speaker embeddings (the pooled vector) of whole utterances."""
    utts = as_utterances(feats)
    return F.normalize(per_utterance(model.embed, model, utts, config, model.emb_dim), dim=-1)


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of embeddings: (D,)x(D,) -> scalar, (N,D)x(M,D) -> (N, M)."""
    a2, b2 = F.normalize(torch.atleast_2d(a), dim=-1), F.normalize(torch.atleast_2d(b), dim=-1)
    sim = a2 @ b2.T
    return sim.reshape(()) if a.ndim == 1 and b.ndim == 1 else sim
