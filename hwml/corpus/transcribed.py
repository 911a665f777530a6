"""Built-in corpus utterances as a transcribed corpus (audio + words) with the exact phone times kept.

Forced alignment (`hwml.align`) is tested and benchmarked on these: the aligner sees only the
audio and the words, as in the Montreal Forced Aligner layout, and its output is compared with
eSpeak's exact phone times. Layout written under `out`:

- `audio/<speaker>/<utt>.wav` (float32 WAV at eSpeak's 22050 Hz, exactly the corpus's rendered
  wave) and `audio/<speaker>/<utt>.lab` (the sentence as spoken, case and punctuation kept);
- `truth/<speaker>/<utt>.phn`: the phone segments in TIMIT `.phn` form (sample indices at
  22050 Hz, 39-class names), so `read_phn` + `label_frames` give the corpus's own frame labels;
- `lexicon.txt`: the grammar's words that cmudict lacks (pass it as `--lexicon`).
"""

from __future__ import annotations

import io
from pathlib import Path

import soundfile as sf

from hwml.corpus import espeak
from hwml.corpus.build import SIZES, plan_utterance, render, speak
from hwml.corpus.voices import speakers
from hwml.data.phones import PHONES_39
from hwml.errors import HwmlError
from hwml.safeio import atomic_write_bytes, atomic_write_text

LEXICON = {"TEAPOTS": "T IY1 P AA2 T S", "THIMBLES": "TH IH1 M B AH0 L Z"}  # not in cmudict


def write_transcribed(
    out, size: str = "small", seed: int = 0, per_speaker: int | None = None, n_speakers: int | None = None
) -> list[dict]:
    """Write the first `per_speaker` utterances of the first `n_speakers` voices of a corpus size.

    Returns one dict per utterance: utt, speaker, text, wav, lab, phn (paths). The same
    arguments give the same files (one private eSpeak speaks them in a fixed order).
    """
    if size not in SIZES:
        raise HwmlError(f"corpus size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    voices = speakers(spec.speakers)[: n_speakers or spec.speakers]
    per_speaker = min(per_speaker or spec.utterances, spec.utterances)
    out = Path(out)
    written = []
    atomic_write_text(out / "lexicon.txt", "".join(f"{w} {p}\n" for w, p in LEXICON.items()), fsync=False)
    with espeak.Engine(private=True) as engine:
        for i, voice in enumerate(voices):
            for k in range(per_speaker):
                plan = plan_utterance(voice, i, k, seed)
                syn = speak(plan, engine)
                wave, starts, ends, labels = render(plan, syn)
                utt = f"{voice.name}-{k:03d}"
                wav = out / "audio" / voice.name / f"{utt}.wav"
                lab, phn = wav.with_suffix(".lab"), out / "truth" / voice.name / f"{utt}.phn"
                buf = io.BytesIO()
                sf.write(buf, wave, syn.sample_rate, format="WAV", subtype="FLOAT")
                atomic_write_bytes(wav, buf.getvalue(), fsync=False)
                atomic_write_text(lab, plan.text + "\n", fsync=False)
                atomic_write_text(
                    phn, "".join(f"{s} {e} {PHONES_39[c]}\n" for s, e, c in zip(starts, ends, labels)), fsync=False
                )
                written.append(
                    {"utt": utt, "speaker": voice.name, "text": plan.text, "wav": wav, "lab": lab, "phn": phn}
                )
    return written
