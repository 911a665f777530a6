"""The Praat round trip: `import phoneme` takes TextGrids (MFA's output) as phone labels, predict
writes its phone segments as TextGrids, and a predicted TextGrid imported again gives back the
predicted frames."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from praatio import textgrid

from hwml.audio.frames import num_frames
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError
from hwml.importers import import_phoneme

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "checkpoints" / "phoneme"

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# MFA's english_us_arpa output for "hello" and a word it could not pronounce: ARPAbet with stress
# digits, an empty interval, `sp`, `spn`, `sil`
HELLO = [
    (0.0, 0.12, ""),
    (0.12, 0.2, "HH"),
    (0.2, 0.35, "AH0"),
    (0.35, 0.4, "L"),
    (0.4, 0.6, "OW1"),
    (0.6, 0.65, "sp"),
    (0.65, 0.8, "spn"),
    (0.8, 1.0, "sil"),
]
# lower case, TIMIT names (zh, ao fold to sh, aa) and a glottal stop whose time goes to its neighbours
OTHER = [(0.0, 0.3, "sil"), (0.3, 0.5, "zh"), (0.5, 0.6, "q"), (0.6, 0.9, "ao1"), (0.9, 1.2, "")]
FOLDED = {"": "sil", "sp": "sil", "spn": "sil", "sil": "sil", "hh": "hh", "ah0": "ah", "l": "l", "ow1": "ow"}
FOLDED |= {"zh": "sh", "ao1": "aa"}


def write_clip(path: Path, seconds: float, sr: int = 16000, seed: int = 0) -> Path:
    """Seeded noise with a few tones: something for the features and the model to chew on."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.01 * rng.standard_normal(n)
    for k, (a, b) in enumerate([(0.1, 0.35), (0.4, 0.6), (0.7, 0.9)]):
        part = (t >= a) & (t < b)
        x[part] += 0.3 * np.sin(2 * np.pi * (180 + 220 * k) * t[part]) * np.sin(2 * np.pi * 3 * t[part]) ** 2
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)
    return path


def write_mfa_textgrid(path: Path, phones: list, end: float) -> None:
    """A TextGrid as MFA writes it: a `words` tier and a `phones` tier (long text format)."""
    tg = textgrid.Textgrid(0.0, end)
    tg.addTier(textgrid.IntervalTier("words", [(0.0, end, "hello")], 0.0, end))
    tg.addTier(textgrid.IntervalTier("phones", [p for p in phones if p[2]], 0.0, end))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def expected(n_frames: int, phones: list) -> list[int]:
    """Naive reference: each frame centre's interval, folded; a `q` split at its middle."""
    phones = [list(p) for p in phones]
    for k, p in enumerate(phones):
        if p[2] == "q":
            phones[k - 1][1] = phones[k + 1][0] = (p[0] + p[1]) / 2
    phones = [p for p in phones if p[2] != "q"]
    out = []
    for t in range(n_frames):
        centre = (t * 160 + 200) / 16000
        label = next(lab for a, b, lab in phones if a <= centre < b)
        out.append(PHONES_39.index(FOLDED[label.lower()]))
    return out


@pytest.fixture
def mfa_corpus(tmp_path):
    """Two speakers: a .wav at 16 kHz and a .flac at 22.05 kHz, each with its TextGrid beside it
    (MFA writes its output in the corpus layout)."""
    root = tmp_path / "corpus"
    write_clip(root / "spk1" / "hello.wav", 1.0)
    write_mfa_textgrid(root / "spk1" / "hello.TextGrid", HELLO, 1.0)
    write_clip(root / "spk2" / "other.flac", 1.2, sr=22050, seed=1)
    write_mfa_textgrid(root / "spk2" / "other.TextGrid", OTHER, 1.2)
    (root / "spk2" / "other.lab").write_text("words that are not aligned\n")
    return root


def test_import_phoneme_reads_mfa_textgrids_as_frame_labels(mfa_corpus, tmp_path):
    from hwml.data.libriphone import read_libriphone

    summary = import_phoneme(mfa_corpus, tmp_path / "out", progress=False)
    assert summary["train_utterances"] == 2 and summary["speakers"] == 2 and summary["skipped"] == []
    train = read_libriphone(tmp_path / "out").train
    assert train.utt_ids == ["spk1_hello", "spk2_other"]
    for (a, b), phones, seconds in zip(zip(train.offsets[:-1], train.offsets[1:]), (HELLO, OTHER), (1.0, 1.2)):
        n = num_frames(int(seconds * 16000))
        assert b - a == n  # every frame of the audio, in place
        assert train.labels[a:b].tolist() == expected(n, phones)
    assert PHONES_39.index("ah") in train.labels.tolist() and PHONES_39.index("sh") in train.labels.tolist()


def test_import_phoneme_phones_from_reads_mfa_output_folder(mfa_corpus, tmp_path):
    """MFA writes its TextGrids to a folder of their own in the corpus's layout: --phones-from."""
    from hwml.data.libriphone import read_libriphone

    mfa_out = tmp_path / "mfa_out"
    (mfa_out / "spk1").mkdir(parents=True)
    (mfa_corpus / "spk1" / "hello.TextGrid").rename(mfa_out / "spk1" / "HELLO.TextGrid")  # names in any case
    (mfa_corpus / "spk2" / "other.TextGrid").write_text("ignored: labels come from --phones-from only\n")
    cli = [sys.executable, "-m", "hwml", "import", "phoneme", str(mfa_corpus), str(tmp_path / "out")]
    done = subprocess.run([*cli, "--phones-from", str(mfa_out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    train = read_libriphone(tmp_path / "out").train
    assert train.utt_ids == ["spk1_hello"]
    assert train.labels.tolist() == expected(num_frames(16000), HELLO)
    with pytest.raises(HwmlError, match="no TextGrid for any audio file"):
        import_phoneme(mfa_corpus, tmp_path / "out2", phones_from=tmp_path, progress=False)
    with pytest.raises(HwmlError, match="not a folder"):
        import_phoneme(mfa_corpus, tmp_path / "out2", phones_from=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "out2").exists()


def test_import_phoneme_refuses_a_bad_textgrid_in_one_line_and_writes_nothing(mfa_corpus, tmp_path):
    bad = mfa_corpus / "spk2" / "other.TextGrid"
    for text, problem in [
        ('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = oops\n', "not a readable Praat"),
        ("this is not a TextGrid at all\n", "not a readable Praat TextGrid"),
    ]:
        bad.write_text(text)
        with pytest.raises(HwmlError, match=f"other.TextGrid: {problem}") as err:
            import_phoneme(mfa_corpus, tmp_path / "out", progress=False)
        assert "\n" not in str(err.value)
        assert not (tmp_path / "out").exists()
    write_mfa_textgrid(bad, [(0.0, 0.5, "sil"), (0.5, 1.2, "ʃ")], 1.2)  # MFA's IPA models: not ARPAbet
    with pytest.raises(HwmlError, match=r"interval 2 \(0.500-1.200 s\): unknown phone 'ʃ' \(use ARPAbet"):
        import_phoneme(mfa_corpus, tmp_path / "out", progress=False)
    tg = textgrid.Textgrid(0.0, 1.2)
    for name in ("a", "b"):
        tg.addTier(textgrid.IntervalTier(name, [(0.0, 1.2, "aa")], 0.0, 1.2))
    tg.save(str(bad), format="short_textgrid", includeBlankSpaces=True)
    with pytest.raises(HwmlError, match=r"no interval tier named 'phones' among its tiers \('a', 'b'\)"):
        import_phoneme(mfa_corpus, tmp_path / "out", progress=False)
    write_mfa_textgrid(bad, [(0.0, 0.3, "sil")], 0.3)  # 0.9 s of the clip unlabelled: another clip's labels?
    with pytest.raises(HwmlError, match="labels leave 0.8. s of the audio's 1.18 s unlabelled"):
        import_phoneme(mfa_corpus, tmp_path / "out", progress=False)
    # the command line: exit 2, one line on stderr, nothing written
    bad.write_text("this is not a TextGrid at all\n")
    cli = [sys.executable, "-m", "hwml", "import", "phoneme", str(mfa_corpus), str(tmp_path / "out")]
    done = subprocess.run(cli, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "error" in line]  # beside the progress bar
    assert len(errors) == 1 and errors[0].startswith("hwml: error: "), done.stderr
    assert "other.TextGrid: not a readable Praat TextGrid" in errors[0]
    assert not (tmp_path / "out").exists()


def read_phones(path: Path) -> tuple[list, float]:
    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return [(e.start, e.end, e.label) for e in tg.getTier("phones").entries], tg.maxTimestamp


def test_predict_writes_textgrids_that_read_back_as_the_segments_and_import_as_the_frames(tmp_path):
    from hwml.api import predict_run
    from hwml.data.libriphone import read_libriphone

    wav = write_clip(tmp_path / "clips" / "spk" / "take.wav", 1.0)
    summary = predict_run(SHIPPED, [wav], tmp_path / "pred.csv", textgrid_dir=tmp_path / "grids")
    segs = summary["files"][0]["segments"]
    assert len(segs) >= 2 and summary["files"][0]["textgrid"] == str(tmp_path / "grids" / "take.TextGrid")
    phones, end = read_phones(tmp_path / "grids" / "take.TextGrid")
    assert phones == [(a, b, p) for a, b, p in segs] and end == 1.0  # the tier runs to the audio's end
    with open(tmp_path / "pred.csv") as f:
        frames = [row["phone"] for row in csv.DictReader(f)]

    # the round trip: that TextGrid beside its clip imports as exactly the predicted frame labels
    (tmp_path / "grids" / "take.TextGrid").rename(wav.with_suffix(".TextGrid"))
    import_phoneme(tmp_path / "clips", tmp_path / "imported", progress=False)
    labels = read_libriphone(tmp_path / "imported").train.labels.tolist()
    assert [PHONES_39[i] for i in labels] == frames

    # the command line: --textgrid DIR, one grid per input file, stems given twice get -2
    copy = tmp_path / "other" / "take.wav"
    copy.parent.mkdir()
    copy.write_bytes(wav.read_bytes())
    cli = [sys.executable, "-m", "hwml", "predict", str(SHIPPED), str(wav), str(copy), "--out", str(tmp_path / "p.csv")]
    done = subprocess.run([*cli, "--textgrid", str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["take-2.TextGrid", "take.TextGrid"]
    assert read_phones(tmp_path / "cli" / "take-2.TextGrid") == (phones, 1.0)


def test_predict_textgrid_needs_a_phoneme_run_and_files(tmp_path):
    import torch

    from hwml.api import predict_run
    from hwml.data.libriphone import write_libriphone
    from hwml.data.types import FrameSet

    def frames(labels, utt, n=20):
        x = torch.randn(n, 39, generator=torch.Generator().manual_seed(0))
        return FrameSet(x, labels, torch.tensor([0, n]), [utt], list(PHONES_39), 1)

    write_libriphone(tmp_path / "course", frames(torch.zeros(20, dtype=torch.long), "u1"), frames(None, "u2"))
    wav = write_clip(tmp_path / "a.wav", 0.5)
    with pytest.raises(HwmlError, match="need a phoneme run, not a speaker run"):
        predict_run(REPO / "checkpoints" / "speaker", [wav], tmp_path / "p.csv", textgrid_dir=tmp_path / "g")
    with pytest.raises(HwmlError, match="not for a course test split"):
        predict_run(SHIPPED, [tmp_path / "course"], tmp_path / "p.csv", textgrid_dir=tmp_path / "g")
    assert not (tmp_path / "g").exists() and not (tmp_path / "p.csv").exists()
