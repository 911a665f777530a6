"""hwml.importers: TIMIT layout -> libriphone, speaker folders / FSDD -> HW4, bad files, splits."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hwml.audio.decode import load_audio
from hwml.audio.features import featurize, logmel40
from hwml.audio.frames import num_frames
from hwml.audio.params import MFCC39
from hwml.data.phones import PHONES_39, fold
from hwml.errors import HwmlError
from hwml.importers import import_phoneme, import_speaker, read_phn

# (phone, end in 16 kHz samples): h#, a vowel, a glottal stop (its time goes to the vowel and the
# pause either side), a pause, a folded vowel, h#
SEGMENTS_16K = [("h#", 2400), ("ae", 8000), ("q", 8800), ("pau", 10400), ("ix", 14000), ("h#", 16000)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def utterance(seed: int, sr: int):
    """A 1 s 'utterance': noise in silences, tones in phones; .phn lines at the file's own rate."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal(sr).astype(np.float32)
    t = np.arange(sr) / sr
    lines, start = [], 0
    for k, (phone, end16) in enumerate(SEGMENTS_16K):
        end = end16 * sr // 16000
        if phone not in ("h#", "pau"):
            x[start:end] += 0.3 * np.sin(2 * np.pi * (200 + 150 * k + 20 * seed) * t[start:end])
        lines.append(f"{start} {end} {phone}")
        start = end
    return x, "\n".join(lines) + "\n"


def expected_labels(n_frames: int, phn_text: str, sr: int) -> list[int]:
    """Naive reference: for each frame centre, the 39-class index of the segment under it; a `q`
    segment's first half belongs to the phone before it, its second half to the one after it;
    frames under no segment are sil."""
    segs = [[int(a), int(b), fold(p)] for a, b, p in (line.split() for line in phn_text.splitlines())]
    for k in range(1, len(segs) - 1):
        if segs[k][2] is None:
            segs[k - 1][1] = segs[k + 1][0] = (segs[k][0] + segs[k][1]) // 2
    segs = [s for s in segs if s[2] is not None]
    out = []
    for t in range(n_frames):
        centre_s = (t * 160 + 200) / 16000
        hit = [p for a, b, p in segs if a / sr <= centre_s < b / sr]
        out.append(PHONES_39.index(hit[0] if hit else "sil"))
    return out


@pytest.fixture
def timit(tmp_path):
    """TIMIT layout: TRAIN/TEST, dialect regions, speakers; SPHERE .WAV/.PHN, RIFF .wav/.phn, 8 kHz."""
    root = tmp_path / "TIMIT"
    files = [  # (path without suffix, sample rate, format, upper-case suffixes)
        ("TRAIN/DR1/FCJF0/SA1", 16000, "NIST", True),
        ("TRAIN/DR1/FCJF0/SX37", 16000, "NIST", True),
        ("TRAIN/DR2/MDAB0/si1039", 16000, "WAV", False),
        ("TRAIN/DR2/MDAB0/sx9", 8000, "WAV", False),
        ("TEST/DR1/FAKS0/SA1", 16000, "NIST", True),
    ]
    truth = {}
    for i, (rel, sr, fmt, upper) in enumerate(files):
        x, phn = utterance(i, sr)
        wav = root / (rel + (".WAV" if upper else ".wav"))
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, x, sr, format=fmt, subtype="PCM_16")
        (root / (rel + (".PHN" if upper else ".phn"))).write_text(phn)
        (root / (rel + ".TXT")).write_text("0 16000 Some words.\n")
        truth[rel] = (wav, phn, sr)
    (root / "TRAIN/DR1/FCJF0/NOLABEL.WAV").write_bytes((root / "TRAIN/DR1/FCJF0/SA1.WAV").read_bytes())
    return root, truth


def test_read_phn_folds_and_gives_q_to_its_neighbours(tmp_path):
    sil, ih, sh = (PHONES_39.index(p) for p in ("sil", "ih", "sh"))
    p = tmp_path / "a.phn"
    p.write_text("0 100 h#\n100 200 q\n200 300 ix\n300 400 zh\n")
    assert read_phn(p) == ([0, 150, 300], [150, 300, 400], [sil, ih, sh])
    p.write_text("0 100 q\n100 120 q\n120 300 ix\n300 400 zh\n400 450 q\n")  # runs of q, q at both edges
    assert read_phn(p) == ([0, 300], [300, 450], [ih, sh])
    for text, problem in [
        ("0 100 q\n", "no phone segment other than the glottal stop q"),
        ("0 100\n", "expected 'start end phone'"),
        ("0 100 xx\n", "unknown TIMIT phone"),
        ("100 50 aa\n", "bad segment"),
        ("\n", "no phone segments"),
        ("a b c\n", "expected"),
    ]:
        p.write_text(text)
        with pytest.raises(HwmlError, match=problem):
            read_phn(p)


def test_import_phoneme_timit_layout(timit, tmp_path):
    from hwml.data.libriphone import read_libriphone

    root, truth = timit
    summary = import_phoneme(root, tmp_path / "out", progress=False)
    assert summary["train_utterances"] == 4 and summary["test_utterances"] == 1
    assert summary["speakers"] == 3 and summary["wav_without_phn"] == 1 and summary["skipped"] == []
    ds = read_libriphone(tmp_path / "out")
    assert ds.train.class_names == list(PHONES_39) and ds.test.labels is not None
    assert ds.train.utt_ids == ["dr1_fcjf0_sa1", "dr1_fcjf0_sx37", "dr2_mdab0_si1039", "dr2_mdab0_sx9"]
    assert ds.test.utt_ids == ["dr1_faks0_sa1"]
    for part in (ds.train, ds.test):
        for u, a, b in zip(part.utt_ids, part.offsets[:-1], part.offsets[1:]):
            rel = next(r for r in truth if u.endswith(Path(r).name.lower()) and Path(r).parent.name.lower() in u)
            wav, phn, sr = truth[rel]
            feats = featurize(wav, MFCC39)
            want = torch.tensor(expected_labels(len(feats), phn, sr))
            assert b - a == len(feats) == num_frames(16000)  # every frame of the audio, in place
            assert torch.equal(part.labels[a:b], want)
            assert torch.allclose(torch.as_tensor(part.feats[a:b]), feats, atol=1e-5)
            ae, sil = PHONES_39.index("ae"), PHONES_39.index("sil")
            # the q segment (frames 49..53 by their centres) split at 8400 samples: 49..51 ae, 52, 53 sil
            assert want[47:55].tolist() == [ae] * 5 + [sil] * 3
    assert ds.train.labels.unique().tolist() == sorted(PHONES_39.index(p) for p in ("sil", "ae", "ih"))


def test_import_phoneme_labels_unlabelled_frames_sil_and_refuses_mostly_unlabelled_audio(timit, tmp_path):
    from hwml.data.libriphone import read_libriphone

    root, _ = timit
    sil = PHONES_39.index("sil")
    (root / "TEST/DR1/FAKS0/SA1.PHN").write_text("0 2400 h#\n2400 8000 ae\n8000 13000 ix\n")  # 0.19 s unlabelled
    summary = import_phoneme(root, tmp_path / "out", progress=False)
    test = read_libriphone(tmp_path / "out").test
    assert summary["test_frames"] == len(test.labels) == num_frames(16000)
    centres = [t * 160 + 200 for t in range(num_frames(16000))]
    assert [int(y) for y, c in zip(test.labels, centres) if c >= 13000] == [sil] * sum(c >= 13000 for c in centres)
    (root / "TEST/DR1/FAKS0/SA1.PHN").write_text("0 2400 h#\n2400 6000 ae\n")  # 0.6 s unlabelled
    with pytest.raises(HwmlError, match=r"SA1.PHN: labels leave 0.6\d s of the audio's 0.98 s unlabelled"):
        import_phoneme(root, tmp_path / "out2", progress=False)
    assert not (tmp_path / "out2").exists()


def test_import_phoneme_without_split_folders_is_all_train(timit, tmp_path):
    root, _ = timit
    summary = import_phoneme(root / "TRAIN" / "DR2", tmp_path / "out", progress=False)
    assert summary["train_utterances"] == 2 and summary["test_utterances"] == 0
    assert not (tmp_path / "out" / "test_split.txt").exists()


def test_import_phoneme_bad_files_fail_or_are_skipped(timit, tmp_path, capsys):
    root, _ = timit
    bad_wav = root / "TRAIN/DR2/MDAB0/sx9.wav"
    bad_wav.write_bytes(b"RIFF....not really a wave file")
    bad_phn = root / "TRAIN/DR1/FCJF0/SX37.PHN"
    bad_phn.write_text("0 16000 xyz\n")
    with pytest.raises(HwmlError, match="SX37.PHN: line 1: unknown TIMIT phone 'xyz' .*--skip-bad"):
        import_phoneme(root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing half-written
    summary = import_phoneme(root, tmp_path / "out", skip_bad=True, progress=False)
    errors = {Path(s["file"]).name: s["error"] for s in summary["skipped"]}
    assert sorted(errors) == ["SX37.WAV", "sx9.wav"]
    assert "unknown TIMIT phone" in errors["SX37.WAV"] and "not a readable audio file" in errors["sx9.wav"]
    assert summary["train_utterances"] == 2
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(HwmlError, match="not an empty folder"):
        import_phoneme(root, tmp_path / "out", skip_bad=True, progress=False)


def test_import_phoneme_refuses_empty_and_mismatched_sources(tmp_path, timit):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HwmlError, match="no .wav file with a .phn"):
        import_phoneme(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(HwmlError, match="not a folder"):
        import_phoneme(tmp_path / "missing", tmp_path / "out", progress=False)
    root, _ = timit
    (root / "TEST/DR1/FAKS0/SA1.PHN").write_text("0 48000 h#\n")  # 3 s of labels for 1 s of audio
    with pytest.raises(HwmlError, match="segments run to 3.00 s"):
        import_phoneme(root, tmp_path / "out", progress=False)


# --- speakers ---------------------------------------------------------------------------------


def write_tone(path: Path, freq: float, seconds: float, sr: int = 16000, seed: int = 0):
    """A tone plus seeded noise, so that no two segments anywhere have the same features."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    sf.write(path, x.astype(np.float32), sr)


@pytest.fixture
def librispeech(tmp_path):
    """speaker/chapter/*.flac plus a plain speaker folder of .wav; every recording a distinct tone."""
    root = tmp_path / "libri"
    recs = {}
    for s, speaker in enumerate(["19", "103", "alice"]):
        for r in range(5):
            rel = f"{speaker}/{100 + r % 2}/{speaker}-{r}.flac" if speaker != "alice" else f"alice/take{r}.wav"
            write_tone(root / rel, 150 + 40 * s + 7 * r, 2.3 + 0.1 * r, sr=16000 if s else 22050, seed=10 * s + r)
            recs[rel] = speaker
    (root / "103" / "100" / "103-100.trans.txt").write_text("103-100-0000 HELLO\n")
    return root, recs


def read_hw4_dir(root: Path):
    import json

    from hwml.safeio import load_tensor_file

    meta = json.loads((root / "metadata.json").read_text())
    train = {
        u["feature_path"]: (spk, load_tensor_file(root / u["feature_path"]))
        for spk, utts in meta["speakers"].items()
        for u in utts
    }
    test = {}
    if (root / "testdata.json").exists():
        labels = dict(line.split(",") for line in (root / "test_labels.csv").read_text().splitlines()[1:])
        for u in json.loads((root / "testdata.json").read_text())["utterances"]:
            test[u["feature_path"]] = (labels[u["feature_path"]], load_tensor_file(root / u["feature_path"]))
    return meta, train, test


def test_import_speaker_folders_segments_and_recording_split(librispeech, tmp_path):
    root, recs = librispeech
    summary = import_speaker(root, tmp_path / "out", segment_seconds=1.0, test_fraction=0.4, seed=3, progress=False)
    assert summary["layout"] == "speaker-folders" and summary["speakers"] == 3 and summary["recordings"] == 15
    assert summary["test_recordings"] == 6  # 2 of each speaker's 5
    meta, train, test = read_hw4_dir(tmp_path / "out")
    assert meta["n_mels"] == 40 and sorted(meta["speakers"]) == ["103", "19", "alice"]
    assert len(train) == summary["train_utterances"] and len(test) == summary["test_utterances"]
    written = {
        x.numpy().tobytes(): (split, spk)
        for split, part in (("train", train), ("test", test))
        for spk, x in part.values()
    }
    assert len(written) == len(train) + len(test)
    found = {"train": set(), "test": set()}
    for rel, speaker in recs.items():
        wave = load_audio(root / rel)
        pieces = [wave[i * 16000 : (i + 1) * 16000] for i in range(len(wave) // 16000)]
        if len(wave) % 16000 >= 8000:  # a tail of at least half a segment is kept
            pieces.append(wave[len(pieces) * 16000 :])
        where = {written.pop(logmel40(piece).numpy().tobytes()) for piece in pieces}
        assert len(where) == 1, f"{rel}: segments in both splits or of another speaker: {where}"
        split, spk = where.pop()
        assert spk == speaker
        found[split].add(rel)
    assert not written  # every written utterance is a segment of exactly one recording
    assert {recs[r] for r in found["train"]} == {"19", "103", "alice"}
    assert len(found["test"]) == 6
    again = import_speaker(root, tmp_path / "again", segment_seconds=1.0, test_fraction=0.4, seed=3, progress=False)
    assert again["test_utterances"] == summary["test_utterances"]
    assert sorted(p.name for p in (tmp_path / "again").glob("uttr-*.pt")) == sorted(
        p.name for p in (tmp_path / "out").glob("uttr-*.pt")
    )


def test_import_speaker_whole_recordings_and_bad_files(librispeech, tmp_path):
    root, _ = librispeech
    (root / "alice" / "broken.wav").write_bytes(b"\x00" * 100)
    with pytest.raises(HwmlError, match="broken.wav"):
        import_speaker(root, tmp_path / "out", progress=False)
    summary = import_speaker(root, tmp_path / "out", skip_bad=True, progress=False)
    assert [Path(s["file"]).name for s in summary["skipped"]] == ["broken.wav"]
    assert summary["train_utterances"] == 15 and summary["test_utterances"] == 0
    assert not (tmp_path / "out" / "testdata.json").exists()
    meta, train, _ = read_hw4_dir(tmp_path / "out")
    lens = sorted(u["mel_len"] for utts in meta["speakers"].values() for u in utts)
    assert lens[0] == num_frames(int(2.3 * 16000)) and all(x.shape[1] == 40 for _, x in train.values())


def test_import_speaker_in_parallel_writes_the_same_folder(librispeech, tmp_path, monkeypatch):
    """Several files featurised at once (threads) must give byte-identical files in the same order."""
    root, _ = librispeech
    outs = {}
    for threads in ("1", "4"):
        monkeypatch.setenv("HWML_IMPORT_THREADS", threads)
        out = tmp_path / f"out{threads}"
        import_speaker(root, out, segment_seconds=1.0, test_fraction=0.4, seed=3, progress=False)
        outs[threads] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert outs["1"] == outs["4"] and len(outs["1"]) > 10


def test_bench_import_quick():
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_import.py"
    proc = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["bench"] == "import_speaker_summary" and summary["ratio"] > 0


def test_import_speaker_refuses_bad_sources(tmp_path):
    flat = tmp_path / "flat"
    write_tone(flat / "0_bob_1.wav", 200, 0.5)
    write_tone(flat / "recording.wav", 200, 0.5)
    with pytest.raises(HwmlError, match=r"recording.wav: .*\{label\}_\{speaker\}_\{n\}"):
        import_speaker(flat, tmp_path / "out", progress=False)
    one = tmp_path / "one"
    write_tone(one / "bob" / "a.wav", 200, 0.5)
    with pytest.raises(HwmlError, match="only one speaker"):
        import_speaker(one, tmp_path / "out", progress=False)
    (tmp_path / "none").mkdir()
    with pytest.raises(HwmlError, match="no audio files"):
        import_speaker(tmp_path / "none", tmp_path / "out", progress=False)
    for kw in ({"test_fraction": 1.0}, {"segment_seconds": 0.0}):
        with pytest.raises(HwmlError):
            import_speaker(one, tmp_path / "out", progress=False, **kw)


def test_import_speaker_fsdd_names(tmp_path):
    flat = tmp_path / "digits"
    for spk, freq in (("ann", 180), ("bob_jr", 260)):
        for n in range(4):
            write_tone(flat / f"{n % 10}_{spk}_{n}.wav", freq + n, 0.4, sr=8000)
    summary = import_speaker(flat, tmp_path / "out", test_fraction=0.25, progress=False)
    assert summary["layout"] == "fsdd-names" and summary["speakers"] == 2
    meta, train, test = read_hw4_dir(tmp_path / "out")
    assert sorted(meta["speakers"]) == ["ann", "bob_jr"]
    assert len(train) == 6 and sorted(spk for spk, _ in test.values()) == ["ann", "bob_jr"]
    from hwml.data import load_dataset

    ds = load_dataset(tmp_path / "out")
    assert (ds.format, ds.train.class_names, sorted(ds.test.labels.tolist())) == ("hw4", ["ann", "bob_jr"], [0, 1])
