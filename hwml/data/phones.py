"""The TIMIT phone sets: 61 phones as labelled, folded to the standard 39 classes.

The folding is Lee & Hon (1989), the set every TIMIT phoneme-recognition paper (and the
course's timit_11 labels) uses. `q` (glottal stop) is dropped, not folded: as a symbol; its
time goes to the phones either side (`hwml.importers.timit.read_phn`).
"""

PHONES_39 = (
    "aa",
    "ae",
    "ah",
    "aw",
    "ay",
    "b",
    "ch",
    "d",
    "dh",
    "dx",
    "eh",
    "er",
    "ey",
    "f",
    "g",
    "hh",
    "ih",
    "iy",
    "jh",
    "k",
    "l",
    "m",
    "n",
    "ng",
    "ow",
    "oy",
    "p",
    "r",
    "s",
    "sh",
    "sil",
    "t",
    "th",
    "uh",
    "uw",
    "v",
    "w",
    "y",
    "z",
)

FOLD_61_TO_39 = {
    "ao": "aa",
    "ax": "ah",
    "ax-h": "ah",
    "axr": "er",
    "hv": "hh",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n",
    "nx": "n",
    "eng": "ng",
    "zh": "sh",
    "ux": "uw",
    "pcl": "sil",
    "tcl": "sil",
    "kcl": "sil",
    "bcl": "sil",
    "dcl": "sil",
    "gcl": "sil",
    "h#": "sil",
    "pau": "sil",
    "epi": "sil",
}
DROPPED = frozenset({"q"})

PHONES_61 = tuple(sorted(set(PHONES_39) - {"sil"} | set(FOLD_61_TO_39) | DROPPED))


def fold(phone: str) -> str | None:
    """Map a TIMIT-61 phone to its 39-class name, or None for a dropped phone (`q`)."""
    phone = phone.strip().lower()
    if phone in DROPPED:
        return None
    phone = FOLD_61_TO_39.get(phone, phone)
    if phone not in PHONES_39:
        raise KeyError(phone)
    return phone
