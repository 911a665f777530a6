"""eSpeak NG phoneme events -> TIMIT 39-class phone segments with exact sample boundaries.

Mapping of eSpeak's English phoneme mnemonics (stress marks stripped) to `hwml.data.phones.PHONES_39`:

| eSpeak | class | note |
| --- | --- | --- |
| `_` `_:` `_!` ... (pauses), `?` | sil | `?` is a glottal stop: TIMIT drops `q`; it sounds like a closure |
| `i:` `i` | iy | `i` is the tense final vowel of "happy" |
| `I` `I2` `I#` `i@` `i@3` | ih | reduced /ɪ/ folds to ih as TIMIT's ix; NEAR (iə, ɪɹ) starts as ɪ |
| `E` `e@` | eh | SQUARE (eə, ɛɹ) starts as ɛ |
| `eI` | ey | |
| `a` `aa` | ae | `aa` is the BATH vowel, æ/a in most accents |
| `A:` `A@` `0` `O:` `O2` `O@` `o@` | aa | TIMIT's ao folds to aa, so LOT, THOUGHT, START and NORTH all land here |
| `V` `@` `@2` `@5` `@-` `a#` | ah | schwas fold to ah as TIMIT's ax |
| `3:` `3` `IR` `VR` | er | `3` is the r-coloured schwa of "butter" (TIMIT axr folds to er) |
| `U` `U@` | uh | |
| `u:` | uw | |
| `oU` | ow | |
| `aI` `aI2` `aI@` `aI3` | ay | FIRE (aɪə) is mostly its diphthong |
| `aU` `aU@` | aw | |
| `OI` | oy | |
| `t#` | dx | the American flap (water, letter) |
| `t2` `t[` / `d[` | t / d | allophones (`t[` is the dental t of en-029 "thing") |
| `T` `D` | th dh | |
| `S` `Z` | sh | TIMIT's zh folds to sh |
| `h` `x` | hh | `x` (loch) is the only other voiceless fricative at the back |
| `tS` `dZ` | ch jh | |
| `N` `n-` `m-` `@L` `l/` `r-` `w#` `j` | ng n m l l r w y | syllabic as TIMIT en/em/el; `r-` linking r; `w#` ʍ |
| `;` | (the phone before) | eSpeak's link after "the" before a vowel: the vowel carries on |
| p b t d k g f v s z m n l r w | same | |

Accent overrides follow what eSpeak actually says in that accent (its IPA output): the `3`
schwa is ə, not ɚ, in the non-rhotic accents (en, en-gb-x-rp, en-gb-x-gbclan, en-gb-x-gbcwmd,
en-029, en-us-nyc) -> ah; the STRUT vowel `V` is ʊ in Lancashire and the West Midlands -> uh;
`aa` is ɑː in RP -> aa; `e@` is ɜː in the West Midlands -> er; `U@` is ɔː in RP -> aa and
ʉɹ in Scotland -> uw; `o@` (more) is o in Scotland and oə in the Caribbean -> ow. In
American English (en-us) the r-coloured vowels end in ɹ, so they are split: the first 60 % is
the vowel and the rest r (`A@` `O@` `o@` -> aa r, `e@` -> eh r, `i@3` -> ih r, `U@` -> uh r,
`aI3` -> ay er), as TIMIT transcribes "car" k aa r.

Closures and silence, as TIMIT labels them (its closures bcl, dcl, ... fold to sil):
- Everything before the first phone and after the last is sil; so is any stretch of at least
  10 ms where the clean synthesised signal is silent (below 2 % of the utterance's loud level).
  eSpeak places the silent closure of p, t, k and ch at the end of the previous phone; this
  rule gives it to sil, as it does with pauses between words.
- b, d, g and jh begin with a voice bar (low-frequency voicing with the mouth closed) inside
  their own segment; the release is where broadband energy (first difference of the signal)
  rises, for 5 ms, to 1.8x the most of the previous 20 ms. The voice bar before it is sil.
- Slivers under 2.5 ms left between a silence and the next event join the run before them.
"""

from __future__ import annotations

import numpy as np

from hwml.corpus.espeak import Synthesis
from hwml.data.phones import PHONES_39

SIL = PHONES_39.index("sil")

_BASE = {
    "i:": "iy",
    "i": "iy",
    "I": "ih",
    "I2": "ih",
    "I#": "ih",
    "i@": "ih",
    "i@3": "ih",
    "E": "eh",
    "e@": "eh",
    "eI": "ey",
    "a": "ae",
    "aa": "ae",
    "A:": "aa",
    "A@": "aa",
    "0": "aa",
    "O:": "aa",
    "O2": "aa",
    "O@": "aa",
    "o@": "aa",
    "V": "ah",
    "@": "ah",
    "@2": "ah",
    "@5": "ah",
    "@-": "ah",
    "a#": "ah",
    "3:": "er",
    "3": "er",
    "IR": "er",
    "VR": "er",
    "U": "uh",
    "U@": "uh",
    "u:": "uw",
    "oU": "ow",
    "aI": "ay",
    "aI2": "ay",
    "aI@": "ay",
    "aI3": "ay",
    "aU": "aw",
    "aU@": "aw",
    "OI": "oy",
    "t#": "dx",
    "t2": "t",
    "t[": "t",
    "d[": "d",
    "?": "sil",
    "T": "th",
    "D": "dh",
    "S": "sh",
    "Z": "sh",
    "h": "hh",
    "x": "hh",
    "tS": "ch",
    "dZ": "jh",
    "N": "ng",
    "n-": "n",
    "m-": "m",
    "@L": "l",
    "l/": "l",
    "r-": "r",
    "w#": "w",
    "j": "y",
    **{c: c for c in "p b t d k g f v s z m n l r w".split()},
}
_NON_RHOTIC = ("en", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
_ACCENT = {
    **{accent: {"3": "ah"} for accent in _NON_RHOTIC},
    "en-gb-x-gbclan": {"3": "ah", "V": "uh"},
    "en-gb-x-gbcwmd": {"3": "ah", "V": "uh", "e@": "er"},
    "en-gb-x-rp": {"3": "ah", "aa": "aa", "U@": "aa"},
    "en-029": {"3": "ah", "o@": "ow"},
    "en-gb-scotland": {"o@": "ow", "U@": "uw"},
    "en-us": {
        "A@": ("aa", "r"),
        "O@": ("aa", "r"),
        "o@": ("aa", "r"),
        "e@": ("eh", "r"),
        "i@3": ("ih", "r"),
        "U@": ("uh", "r"),
        "aI3": ("ay", "er"),
    },
}
VOWEL_PART = 0.6  # share of a split r-coloured vowel that is the vowel
VOICED_STOPS = frozenset(PHONES_39.index(c) for c in ("b", "d", "g", "jh"))
SILENCE_LEVEL = 0.02  # relative to the 95th percentile of 2.5 ms frame levels
MIN_SILENCE_S = 0.010
STEP_S = 0.0025  # analysis frame for silence and release detection


def phone_classes(mnemonic: str, accent: str) -> tuple[str, ...]:
    """The TIMIT-39 class(es) of one eSpeak phoneme in one accent ("sil" for pauses).

    Two classes mean the phone is split (VOWEL_PART, rest). Raises KeyError for a mnemonic
    outside the table (the corpus tests synthesise the whole grammar to keep it complete).
    """
    if mnemonic.startswith("_"):
        return ("sil",)
    target = _ACCENT.get(accent, {}).get(mnemonic) or _BASE[mnemonic]
    return target if isinstance(target, tuple) else (target,)


def _frame_levels(x: np.ndarray, step: int) -> np.ndarray:
    n = len(x) // step
    return np.sqrt((x[: n * step].reshape(n, step).astype(np.float64) ** 2).mean(1))


def _release(segment: np.ndarray, step: int) -> int | None:
    """Sample offset in a voiced stop where the release starts, or None if there is no voice bar."""
    levels = _frame_levels(np.diff(segment), step)
    lookback = 8  # 20 ms: more than one pitch period of the voice bar
    for i in range(6, len(levels) - 1):  # the bar lasts at least 15 ms
        if min(levels[i], levels[i + 1]) > 1.8 * levels[max(0, i - lookback) : i].max():
            return i * step
    return None


def segments(syn: Synthesis, accent: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, labels): contiguous phone segments covering all of `syn.wave`.

    Sample indices at syn.sample_rate; labels are indices into PHONES_39.
    """
    n = len(syn.wave)
    per_sample = np.full(n, SIL, np.int16)
    events = [(name, min(start, n)) for name, start in syn.phones]
    previous = ("sil",)
    for k, (name, start) in enumerate(events):
        end = events[k + 1][1] if k + 1 < len(events) else n
        classes = previous if name == ";" else phone_classes(name, accent)
        previous = classes
        if end <= start:
            continue
        cut = start + round(VOWEL_PART * (end - start)) if len(classes) == 2 else end
        per_sample[start:cut] = PHONES_39.index(classes[0])
        per_sample[cut:end] = PHONES_39.index(classes[-1])
        if len(classes) == 1 and per_sample[start] in VOICED_STOPS and end - start > 0.03 * syn.sample_rate:
            release = _release(syn.wave[start:end], round(STEP_S * syn.sample_rate))
            if release is not None:
                per_sample[start : start + release] = SIL
    step = round(STEP_S * syn.sample_rate)
    _mark_silence(per_sample, syn.wave, step, round(MIN_SILENCE_S / STEP_S))
    starts, ends, classes = _runs(per_sample)
    keep = np.r_[True, ends[1:] - starts[1:] >= step]  # slivers (< 2.5 ms) left between a
    starts, classes = starts[keep], classes[keep]  # silence and the next event join the run before
    new = np.r_[True, classes[1:] != classes[:-1]]
    starts, classes = starts[new], classes[new]
    return starts, np.r_[starts[1:], n].astype(np.int64), classes


def _runs(per_sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    change = np.flatnonzero(np.diff(per_sample)) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [len(per_sample)]]).astype(np.int64)
    return starts, ends, per_sample[starts].astype(np.int64)


def _mark_silence(per_sample: np.ndarray, wave: np.ndarray, step: int, min_frames: int) -> None:
    levels = _frame_levels(wave, step)
    if not len(levels):
        return
    quiet = levels < SILENCE_LEVEL * max(np.percentile(levels, 95), 1e-6)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for first, stop in zip(edges[::2], edges[1::2]):
        if stop - first >= min_frames:
            per_sample[first * step : stop * step] = SIL
