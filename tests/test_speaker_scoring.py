"""hwml.speaker.scoring: centring and whitening maths on synthetic embeddings with a known shift,
S-norm on a synthetic cohort, multi-crop against whole-clip embedding, length-aware thresholds,
the statistics files; then enrol / identify / verify through the package with the shipped
model (checkpoints/speaker carries statistics and held-out thresholds) on built-in corpus clips."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hwml.errors import HwmlError
from hwml.speaker.scoring import (
    ROSTER_MIN,
    Scorer,
    ScoringStats,
    crop_embeddings,
    fit_stats,
    head_stats,
    length_thresholds,
    load_stats,
    save_stats,
    save_thresholds,
    threshold_for,
)

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "speaker"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shifted_speakers(n_speakers=40, per=6, dim=16, shift=8.0, noise=0.3, seed=0):
    """Unit embeddings of speakers whose directions share one big common offset (a corpus' shared
    direction): (embeddings, labels, the offset's unit direction)."""
    gen = torch.Generator().manual_seed(seed)
    offset = F.normalize(torch.randn(dim, generator=gen), dim=0)
    centres = torch.randn(n_speakers, dim, generator=gen) + shift * offset
    x = centres.repeat_interleave(per, 0) + noise * torch.randn(n_speakers * per, dim, generator=gen)
    return F.normalize(x, dim=-1), torch.arange(n_speakers).repeat_interleave(per), offset


def test_centring_removes_a_known_shift_and_whitening_makes_the_spread_round():
    emb, labels, offset = shifted_speakers()
    stats = fit_stats(emb, labels, shrink=0.0)
    assert F.cosine_similarity(stats.mean, offset, dim=0) > 0.95  # the mean points along the shift
    raw_diff = (emb @ emb.T)[labels[:, None] != labels[None, :]].mean()
    centred = stats.transform(emb)
    diff = (centred @ centred.T)[labels[:, None] != labels[None, :]].mean()
    assert raw_diff > 0.7 and abs(float(diff)) < 0.1  # different speakers: from alike to unrelated
    assert torch.allclose(centred.norm(dim=-1), torch.ones(len(emb)), atol=1e-5)
    white = (emb - stats.mean) @ stats.whitening
    cov = white.T @ white / (len(white) - 1)
    eig = torch.linalg.eigvalsh(cov)
    raw_eig = torch.linalg.eigvalsh(torch.cov((emb - stats.mean).T))
    assert eig.max() / eig.min() < 1.01 < raw_eig.max() / raw_eig.min()  # isotropic after, not before
    assert stats.cohort.shape == (40, 16) and stats.meta["n_speakers"] == 40
    shrunk = fit_stats(emb, labels, shrink=1.0)  # full shrinkage: the identity (scaled)
    assert torch.allclose(shrunk.whitening, torch.eye(16), atol=1e-5)
    with pytest.raises(HwmlError, match="two speakers"):
        fit_stats(emb[:6], labels[:6])


def test_snorm_rejects_a_shifted_impostor_that_raw_cosine_accepts():
    """Enrolment B and the impostor clip both sit near a 'hub' direction shared by half the cohort
    (a microphone everybody there used); target A and its clip do not. Raw cosine ranks the
    impostor above the genuine trial, so no threshold accepts the one and rejects the other;
    after S-norm the genuine trial wins clearly."""
    gen = torch.Generator().manual_seed(1)
    dim = 32
    hub = F.normalize(torch.randn(dim, generator=gen), dim=0)
    cohort = F.normalize(
        torch.cat([torch.randn(50, dim, generator=gen), torch.randn(50, dim, generator=gen) * 0.3 + 4 * hub]), dim=-1
    )
    a = F.normalize(torch.randn(dim, generator=gen), dim=0)
    a_clip = F.normalize(a + 0.9 * F.normalize(torch.randn(dim, generator=gen), dim=0), dim=0)
    b = F.normalize(4 * hub + 0.3 * torch.randn(dim, generator=gen), dim=0)
    impostor = F.normalize(4 * hub + 0.3 * torch.randn(dim, generator=gen), dim=0)
    stats = ScoringStats(torch.zeros(dim), torch.eye(dim), cohort)  # no centring: S-norm alone
    tests, enrolled = torch.stack([a_clip, impostor]), torch.stack([a, b])
    raw = Scorer(stats, "raw").scores(tests, enrolled)
    genuine, fake = raw[0, 0], raw[1, 1]
    assert fake > genuine  # before: the impostor outscores the genuine trial
    for mode in ("snorm", "asnorm"):
        norm = Scorer(stats, mode, top_n=20).scores(tests, enrolled)
        assert norm[0, 0] > norm[1, 1] + 1.0, mode  # after: rejected at any threshold between
    with pytest.raises(HwmlError, match="scoring"):
        Scorer(stats, "znorm")


def test_roster_centring_and_its_fallbacks():
    emb, labels, _ = shifted_speakers(n_speakers=5, per=4)
    enrolled = torch.stack([F.normalize(emb[labels == k].mean(0), dim=0) for k in range(5)])
    stats = fit_stats(emb, labels)
    scorer = Scorer(stats, "roster")
    assert scorer.effective_mode(5) == "roster" and scorer.effective_mode(ROSTER_MIN - 1) == "centre"
    assert Scorer(None, "roster").effective_mode(2) == "raw" and Scorer(None, "snorm").effective_mode(9) == "raw"
    scores = scorer.scores(emb, enrolled)
    expected = F.normalize(emb - enrolled.mean(0), dim=-1) @ F.normalize(enrolled - enrolled.mean(0), dim=-1).T
    assert torch.allclose(scores, expected, atol=1e-5)
    assert (scores.argmax(1) == labels).float().mean() == 1.0
    raw = Scorer(None, "raw").scores(emb, enrolled)
    assert torch.allclose(raw, emb @ enrolled.T, atol=1e-5)


def tiny_model():
    from hwml.models.speaker import SpeakerClassifier

    torch.manual_seed(0)
    return SpeakerClassifier(n_classes=4, d_model=16, depth=1, heads=2, ff_dim=32, emb_dim=8, head="amsoftmax").eval()


def test_multi_crop_equals_whole_clip_when_shorter_than_a_crop_and_averages_crops_otherwise():
    from hwml.speaker.inference import embed

    model = tiny_model()
    gen = torch.Generator().manual_seed(2)
    short = torch.randn(150, 40, generator=gen)
    assert torch.allclose(crop_embeddings(model, [short], None, crop=200), embed(model, [short]), atol=1e-5)
    long_ = torch.randn(450, 40, generator=gen)
    starts = [0, 100, 200, 250]  # every crop/2, the last flush with the end
    pieces = embed(model, [long_[s : s + 200] for s in starts])
    expected = F.normalize(pieces.sum(0), dim=0)
    both = crop_embeddings(model, [short, long_], None, crop=200)
    assert torch.allclose(both[1], expected, atol=1e-5) and torch.allclose(both[0], embed(model, [short])[0], atol=1e-5)
    assert not torch.allclose(both[1], embed(model, [long_])[0], atol=1e-3)  # crops differ from one window


def test_length_thresholds_and_log_length_interpolation():
    gen = torch.Generator().manual_seed(3)
    n = 400
    frames = torch.cat([torch.full((n,), 40), torch.full((n,), 400)])
    same = torch.rand(2 * n, generator=gen) < 0.3
    # short clips' genuine scores around 0.5, long ones' around 0.8; impostors 0.2 / 0.4
    centre = torch.where(frames < 150, torch.where(same, 0.5, 0.2), torch.where(same, 0.8, 0.4))
    scores = centre + 0.03 * torch.randn(2 * n, generator=gen)
    found = length_thresholds(scores, same, frames)
    assert 0.2 < found["short"] < 0.5 < found["long"] < 0.8 and found["eer_short"] == found["eer_long"] == 0
    assert found["short_frames"] == 40 and found["long_frames"] == 400
    stats = ScoringStats(torch.zeros(2), torch.eye(2), torch.eye(2), {"thresholds": {"roster": found, "centre": 0.7}})
    mid = math.exp((math.log(40) + math.log(400)) / 2)
    assert threshold_for(stats, "roster", round(mid)) == pytest.approx((found["short"] + found["long"]) / 2, abs=1e-3)
    assert (
        threshold_for(stats, "roster", 10) == found["short"] and threshold_for(stats, "roster", 9000) == found["long"]
    )
    assert threshold_for(stats, "roster") == found["long"] and threshold_for(stats, "centre", 10) == 0.7
    assert threshold_for(stats, "snorm") is None and threshold_for(None, "roster") is None
    with pytest.raises(HwmlError, match="long trials"):
        length_thresholds(scores[:n], same[:n], frames[:n])


def test_statistics_files_round_trip_and_refuse_other_weights(tmp_path):
    emb, labels, _ = shifted_speakers(n_speakers=6, per=3, dim=8)
    stats = fit_stats(emb, labels, meta={"model_id": "abc123"})
    assert load_stats(tmp_path) is None  # a run without statistics
    save_stats(tmp_path, stats)
    back = load_stats(tmp_path, "abc123")
    assert torch.equal(back.mean, stats.mean) and torch.equal(back.cohort, stats.cohort)
    assert torch.equal(back.whitening, stats.whitening) and back.meta["n_speakers"] == 6
    save_thresholds(tmp_path, {"roster": 0.5}, "made up")
    assert load_stats(tmp_path).meta["thresholds"] == {"roster": 0.5}
    with pytest.raises(HwmlError, match="unknown scoring"):
        save_thresholds(tmp_path, {"plda": 0.5}, "made up")
    with pytest.raises(HwmlError, match="not abc999"):
        load_stats(tmp_path, "abc999")
    (tmp_path / "embedding_stats.safetensors").write_bytes(b"not tensors")
    with pytest.raises(HwmlError, match="unreadable embedding statistics"):
        load_stats(tmp_path)
    with pytest.raises(HwmlError, match="no embedding statistics"):
        save_thresholds(tmp_path / "empty", {"roster": 0.5}, "x")


def test_head_stats_are_the_unit_class_weights():
    model = tiny_model()
    stats = head_stats(model)
    rows = F.normalize(model.head.weight.detach(), dim=-1)
    assert torch.allclose(stats.cohort, rows) and torch.allclose(stats.mean, rows.mean(0))
    from hwml.models.speaker import SpeakerClassifier

    assert head_stats(SpeakerClassifier(n_classes=3, d_model=16, depth=1, heads=2, ff_dim=32)) is None


# ------------------------------------------------------------ the shipped model, end to end


@pytest.fixture(scope="module")
def clips(small_corpus, tmp_path_factory):
    """Built-in corpus voices the shipped model never heard: per speaker 2 enrolment clips and
    one more to identify, as .pt files in one folder per speaker (what `hwml enroll` reads)."""
    from hwml.data import load_dataset

    ds = load_dataset(small_corpus / "speaker")
    root = tmp_path_factory.mktemp("scoring-people")
    names = ds.train.class_names[:5]
    queries = {}
    for y, name in enumerate(names):
        idx = (ds.train.labels == y).nonzero().flatten().tolist()
        (root / "DIR" / name).mkdir(parents=True)
        for k in range(2):
            torch.save(ds.train.utterance(idx[k]).clone(), root / "DIR" / name / f"{k}.pt")
        queries[name] = root / "query" / f"{name}.pt"
        queries[name].parent.mkdir(exist_ok=True)
        torch.save(ds.train.utterance(idx[2]).clone(), queries[name])
    return root, names, queries


def test_shipped_model_scores_in_the_calibrated_space(clips, tmp_path):
    from hwml.speaker.identify import (
        enroll_folder,
        identify_files,
        identify_scored,
        load_enrollments,
        open_model,
        verify,
    )

    root, names, queries = clips
    sm = open_model(SHIPPED)
    assert sm.stats is not None and sm.stats.meta["model_id"] == sm.fingerprint
    assert set(sm.stats.meta["thresholds"]) >= {"roster", "centre"}
    summary = enroll_folder(SHIPPED, root / "DIR", tmp_path / "people.json")
    assert summary["speakers"] == 5 and summary["clips"] == 10
    enrolled = load_enrollments(tmp_path / "people.json")
    named = 0
    for name, query in queries.items():
        ranked, info = identify_scored(sm, enrolled, query)
        assert info["scoring"] == "roster" and info["held_out"] and info["calibrated"]
        frames = len(torch.load(query, weights_only=True))
        assert info["threshold"] == pytest.approx(threshold_for(sm.stats, "roster", frames))
        named += ranked[0][0] == name
    assert named >= 3  # of 5 unseen eSpeak voices (chance: 1)
    out = identify_files(SHIPPED, tmp_path / "people.json", [root / "query"], tmp_path / "ids.csv")
    assert out["scoring"] == "roster" and out["header"].startswith("Id,Speaker,Score,top1,score1")
    same = verify(sm, queries[names[0]], queries[names[0]])
    assert same["scoring"] == "centre" and same["same"] and same["score"] == pytest.approx(1.0, abs=1e-5)
    assert same["threshold"] == pytest.approx(sm.stats.meta["thresholds"]["centre"])
    two = identify_scored(sm, enrolled[:2], queries[names[0]])[1]  # too few for roster centring
    assert two["scoring"] == "centre"


def test_a_copy_without_statistics_scores_raw_cosines_as_before(clips, tmp_path):
    from hwml.speaker.identify import enroll_many, identify_scored, open_model, verify

    run = tmp_path / "plain"
    shutil.copytree(SHIPPED, run, ignore=shutil.ignore_patterns("embedding_stats.*"))
    root, names, queries = clips
    sm = open_model(run)
    assert sm.stats is None
    enrolled = enroll_many(sm, {n: sorted((root / "DIR" / n).glob("*.pt")) for n in names})
    ranked, info = identify_scored(sm, enrolled, queries[names[0]])
    config = json.loads((run / "config.json").read_text())
    assert info["scoring"] == "raw" and not info["held_out"]
    assert info["threshold"] == pytest.approx(config["verification"]["threshold"])
    emb = sm.embed([queries[names[0]]])[0]
    best = max(float(emb @ e.embedding) for e in enrolled)
    assert ranked[0][1] == pytest.approx(best, abs=1e-5)  # plain cosine to the mean embedding
    assert verify(sm, queries[names[0]], queries[names[1]])["scoring"] == "raw"


def test_short_clip_benchmark_skips_cleanly_without_its_data(tmp_path):
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_speaker_short.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--data", str(tmp_path / "no-shared")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["skipped"].endswith("nothing to measure")
