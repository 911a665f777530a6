"""The built-in corpus: speech synthesised with eSpeak NG, written in the three course formats.

`ensure_corpus()` returns a folder with `timit_11/`, `libriphone/` (HW2) and `speaker/` (HW4),
generating it on first use and reusing it afterwards.
"""

from hwml.corpus.build import SIZES, VERSION, default_root, ensure_corpus

__all__ = ["SIZES", "VERSION", "default_root", "ensure_corpus"]
