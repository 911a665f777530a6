"""The Predict panels' examples: the real clips shipped in assets/clips (assets/README.md credits
them), the phoneme ones with what is said in them, so a visitor without a microphone sees a
prediction (and a forced alignment) at one click."""

from __future__ import annotations

from pathlib import Path

from hwml.serve.who_is_speaking import CLIPS

# what each shipped clip says (assets/README.md lists the corpus utterances)
CLIP_TRANSCRIPTS = {
    "woman-0036_1": "WE SPEAK OUT WHEN WE FEEL WE SHOULD SPEAK OUT",
    "woman-0036_2": "IT IS ALWAYS SO NICE TO SEE YOU",
    "woman-0036_3": "SO YOU WANT TO BE MORE PRODUCTIVE",
    "man-0482_1": "WE HAVE OTHERS WHO CAN DO THE SAME THING",
    "man-0482_2": "BUT AGAIN HE HAS MADE A VERY CLEAR STATEMENT",
    "man-0482_3": "TIME TO MAKE A STATEMENT CAPTAINS",
    "girl-0006_1": "JAYME IS GOING TO SEE HEN",
    "girl-0006_2": "DORA IS COME FROM JAPAN",
    "girl-0006_3": "DOES LAYLA LIKE THE JAM",
    "george_1": "THREE",
    "george_2": "SEVEN",
    "george_3": "FIVE",
    "jackson_1": "THREE",
    "jackson_2": "SEVEN",
    "jackson_3": "FIVE",
}


def phoneme_examples(folder: Path = CLIPS) -> list[list[str]]:
    """[[clip, transcript]] of the shipped clips that are present (the sentences first)."""
    return [
        [str(folder / f"{stem}.flac"), words]
        for stem, words in CLIP_TRANSCRIPTS.items()
        if (folder / f"{stem}.flac").is_file()
    ]


def speaker_examples(folder: Path = CLIPS) -> list[list[str]]:
    """[[clip]]: one clip of each shipped voice (the clip Who is speaking? identifies)."""
    return [
        [str(folder / f"{stem}.flac")]
        for stem in CLIP_TRANSCRIPTS
        if stem.endswith("_3") and (folder / f"{stem}.flac").is_file()
    ]
