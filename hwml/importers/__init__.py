"""Your own audio -> course-format folders, one module per layout:

- `timit`: TIMIT layout (`.wav` + `.phn`), or audio with Praat TextGrids (MFA's output) -> HW2
  libriphone; `import_phoneme` also takes audio with transcripts and no labels, which
  `transcribed` force-aligns (MFA layout, Kaldi `text`)
- `phone_labels`: a `.phn` or TextGrid -> one label for every frame of its audio (`q`, silences)
- `speakers`: one folder per speaker (LibriSpeech too) or FSDD-style names -> HW4 Dataset
- `common`: what they share (walking folders, featurising many files at once, bad files)

Features come from `hwml.audio` (MFCC39 for phonemes, LOGMEL40 for speakers), the same functions
inference uses. Nothing is skipped silently: an unreadable file fails the import, naming the
file, unless `skip_bad`, in which case it is printed and listed in the returned summary. The
output folder is written under a temporary name and renamed into place only when complete.
"""

from hwml.importers.speakers import import_speaker
from hwml.importers.timit import import_phoneme, read_phn

__all__ = ["import_phoneme", "import_speaker", "read_phn"]
