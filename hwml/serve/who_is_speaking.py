"""What the app's "Who is speaking?" section computes: a session's enrolled people, the ranking
and the verdict in words, the voice map's data, and what a speaker model's classes are.

The maths is hwml.speaker's (identify: embeddings, cosines; verification: the threshold); this module keeps
the state a browser session needs and says the results in plain sentences, so the UI only wires
components. A `Roster` keeps each person's clips (uploads, recordings) as well as their
embeddings per model: picking another model enrols everyone again from their clips, with no
clicks. People loaded from an enrolment file have no clips, only the embedding of the model that
made the file; they work with that model alone.

Torch and the models are imported inside the functions that need them: the Predict panel asks
`run_note` for a run's classes when the page loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hwml import settings
from hwml.errors import HwmlError
from hwml.i18n import t
from hwml.runs.folder import read_config

# Gradio's file widgets hand over absolute paths; these are the file names shown in tables.
MAX_NAME = 60


# ------------------------------------------------------------------------- the model's classes


def classes_description(config: dict, lang: str = "en") -> str:
    """What a speaker run's classes are, in a sentence or two for Predict: config.json's
    "classes_description" when its maker wrote one (checkpoints/card.py does for the shipped
    model), else the count and the first few class names."""
    given = (config or {}).get("classes_description")
    if isinstance(given, str) and given.strip() and lang == "en":  # written in English by its maker
        return given.strip()
    names = [str(n) for n in (config or {}).get("class_names") or []]
    if not names:
        return t("who.no_classes", lang)
    shown = ", ".join(names[:3]) + (t("who.and_more", lang, n=len(names) - 3) if len(names) > 3 else "")
    return t("who.classes", lang, n=len(names), shown=shown)


def run_note(run_dir, lang: str = "en") -> str:
    """classes_description of a run folder, read without loading the model ("" when unreadable: the
    picker may point at a run still starting)."""
    try:
        return classes_description(read_config(run_dir), lang)
    except (HwmlError, OSError):
        return ""


# ------------------------------------------------------------------------------- the threshold


def threshold_words(info: dict, lang: str = "en", frames: int | None = None) -> str:
    """The same-speaker threshold in words: calibrated on held-out speakers (for this clip's
    length, hwml.speaker.identify.acceptance), calibrated on validation pairs (with its equal error
    rate), or the default."""
    value = f"{info['threshold']:.2f}"
    if info.get("held_out"):
        centre = t("who.centre.roster" if info.get("scoring") == "roster" else "who.centre.training", lang)
        seconds = f"{frames / 100:.1f}" if frames else "?"
        return t("who.th.held_out", lang, value=value, seconds=seconds, centre=centre)
    if not info.get("calibrated"):
        return t("who.th.default", lang, value=value)
    eer = info.get("eer")
    trials = info.get("n_trials") or 0
    where = t("who.th.pairs", lang, n=f"{trials:,}") if trials else ""
    return (
        t("who.th.calibrated_eer", lang, value=value, eer=f"{eer:.1%}", where=where)
        if isinstance(eer, (int, float))
        else t("who.th.calibrated", lang, value=value)
    )


def model_summary(source, lang: str = "en") -> str:
    """A line about the picked model: how many speakers it knows and its threshold (for a 3 s
    clip, when the threshold depends on the length)."""
    from hwml.speaker.identify import acceptance, open_model, scoring_mode

    sm = open_model(source)
    n = len(sm.config.get("class_names") or [])
    info = acceptance(sm, scoring_mode(sm, 3), 300)
    why = "" if info["calibrated"] else t("who.uncalibrated_why", lang)
    words = threshold_words(info, lang, 300)
    return t("who.summary", lang, dim=sm.model.emb_dim, n=n, threshold=words, why=why)


# ------------------------------------------------------------------------------------ the people


def clip_name(clip) -> str:
    return Path(str(clip)).name if isinstance(clip, (str, Path)) else "recording"


@dataclass
class Person:
    """An enrolled person: their clips, or (from an enrolment file) a ready-made embedding."""

    name: str
    clips: list[str] = field(default_factory=list)
    imported: object = None  # hwml.speaker.identify.Enrollment from a file, or None
    embedded: dict = field(default_factory=dict)  # (model fingerprint, clip) -> (D,) unit embedding

    @property
    def n_clips(self) -> int:
        return len(self.clips) + (self.imported.n_clips if self.imported is not None else 0)


class Roster:
    """The people a browser session has enrolled (kept in its gr.State). Every change returns a
    new Roster, so an event that fails half-way leaves the session's roster as it was."""

    def __init__(self, people: Sequence[Person] = ()):
        self.people = list(people)

    def __len__(self) -> int:
        return len(self.people)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.people]

    def add(self, source, name: str, clips: Sequence) -> Roster:
        """Enrol `name` from clips (files), or add the clips to the person of that name. The new
        clips are embedded now, so an unreadable file is refused here, naming it."""
        from hwml.speaker.identify import open_model

        name = " ".join(str(name or "").split())
        if not name:
            raise HwmlError("give the person a name")
        if len(name) > MAX_NAME:
            raise HwmlError(f"{name[:20]}...: a name of at most {MAX_NAME} characters, please")
        clips = [str(c) for c in clips if c]
        if not clips:
            raise HwmlError(f"{name}: record or upload at least one clip")
        sm = open_model(source)
        old = next((p for p in self.people if p.name == name), None)
        person = replace(old, clips=list(old.clips), embedded=dict(old.embedded)) if old else Person(name)
        new = [c for c in dict.fromkeys(clips) if c not in person.clips]
        if not new:
            raise HwmlError(f"{name}: {', '.join(map(clip_name, clips))} already enrolled")
        for clip, vector in zip(new, sm.embed(new)):
            person.embedded[(sm.fingerprint, clip)] = vector
        person.clips += new
        return Roster([person if p is old else p for p in self.people] + ([] if old else [person]))

    def remove(self, name: str) -> Roster:
        name = " ".join(str(name or "").split())
        if name not in self.names:
            raise HwmlError(
                f"{name or 'nobody'}: not enrolled" + (f" (enrolled: {', '.join(self.names)})" if self.people else "")
            )
        return Roster([p for p in self.people if p.name != name])

    def enrollments(self, source) -> list:
        """Everyone as a hwml.speaker.identify.Enrollment of this model: the normalised mean of their
        clips' embeddings (clips embedded once per model), together with an enrolment file's
        vector when the same model made it."""
        import torch
        import torch.nn.functional as F

        from hwml.speaker.identify import Enrollment, open_model

        sm = open_model(source)
        if not self.people:
            raise HwmlError("nobody is enrolled yet: enrol a few people first")
        missing = [(p, c) for p in self.people for c in p.clips if (sm.fingerprint, c) not in p.embedded]
        if missing:
            for (person, clip), vector in zip(missing, sm.embed([c for _, c in missing])):
                person.embedded[(sm.fingerprint, clip)] = vector
        out = []
        for p in self.people:
            vectors = [p.embedded[(sm.fingerprint, c)] for c in p.clips]
            usable = p.imported is not None and p.imported.model_id == sm.fingerprint
            if usable:
                vectors.append(p.imported.embedding * p.imported.n_clips)
            if not vectors:
                raise HwmlError(
                    f"{p.name} came from an enrolment file made with another model: pick that model, "
                    "or enrol them again from clips"
                )
            n = len(p.clips) + (p.imported.n_clips if usable else 0)
            out.append(Enrollment(p.name, F.normalize(torch.stack(vectors).sum(0), dim=0), n, sm.fingerprint))
        return out

    def rows(self) -> list[tuple[str, int, str]]:
        """(name, clips, where from) for the table of enrolled people."""
        out = []
        for p in self.people:
            parts = [", ".join(map(clip_name, p.clips))] if p.clips else []
            if p.imported is not None:
                parts.append(f"enrolment file ({p.imported.n_clips} clips, model {p.imported.model_id})")
            out.append((p.name, p.n_clips, " + ".join(parts)))
        return out

    def save(self, source, path) -> Path:
        """The enrolment file of everyone, made with this model (hwml.speaker.identify's JSON)."""
        from hwml.speaker.identify import save_enrollments

        return save_enrollments(path, self.enrollments(source))

    def load(self, source, path) -> Roster:
        """Add (or replace, by name) the people of an enrolment file made with this model."""
        from hwml.speaker.identify import check_enrollments, load_enrollments

        found = load_enrollments(path)
        check_enrollments(source, found, where=Path(path).name)
        incoming = {e.name: Person(e.name, imported=e) for e in found}
        return Roster([p for p in self.people if p.name not in incoming] + list(incoming.values()))


# ------------------------------------------------------------------------ identify and verify


def identify_clip(source, roster: Roster, clip, lang: str = "en") -> dict:
    """Rank the enrolled people for a clip. {"ranked": [(name, score)], best first,
    "rows": [(rank, name, score, above threshold)], "sentence", "threshold": {...}}. Scores and
    threshold are hwml.speaker.identify's: centred and length-aware when the model carries
    held-out calibration (the shipped one does), else raw cosines and the validation threshold."""
    from hwml.speaker.identify import identify_scored, open_model

    if not clip:
        raise HwmlError("record or upload the clip to identify")
    sm = open_model(source)
    ranked, info = identify_scored(sm, roster.enrollments(sm), clip)
    best, score = ranked[0]
    words = threshold_words(info, lang, info.get("frames"))
    if score >= info["threshold"]:
        verdict = t("who.id.above", lang, threshold=words, best=best)
    else:
        verdict = t("who.id.below", lang, threshold=words)
    others = "" if len(ranked) == 1 else t("who.id.next", lang, name=ranked[1][0], score=f"{ranked[1][1]:.2f}")
    yes, no = t("who.yes", lang), t("who.no", lang)
    return {
        "ranked": ranked,
        "threshold": info,
        "rows": [(i + 1, n, round(s, 4), yes if s >= info["threshold"] else no) for i, (n, s) in enumerate(ranked)],
        "sentence": t("who.id.sentence", lang, best=best, score=f"{score:.2f}", verdict=verdict, others=others),
    }


def same_speaker(source, clip_a, clip_b, lang: str = "en") -> dict:
    """hwml.speaker.identify.verify with the answer in words: {"score", "threshold", "same",
    "calibrated", "eer", "sentence"}."""
    from hwml.speaker.identify import open_model, verify

    if not clip_a or not clip_b:
        raise HwmlError("give two clips: A and B")
    sm = open_model(source)
    result = verify(sm, clip_a, clip_b)
    words = threshold_words(result, lang, result.get("frames"))
    key = "who.same.yes" if result["same"] else "who.same.no"
    sentence = t(key, lang, score=f"{result['score']:.2f}", threshold=words)
    return {**result, "sentence": sentence}


def voice_map(source, roster: Roster | None = None, clip=None, lang: str = "en") -> dict:
    """hwml.speaker.voice_map.embedding_map of the model's known speakers, the enrolled people and an
    optional clip, plus a caption saying what the picture shows."""
    from hwml.speaker.identify import open_model
    from hwml.speaker.voice_map import embedding_map

    sm = open_model(source)
    enrolled = roster.enrollments(sm) if roster is not None and len(roster) else []
    found = embedding_map(sm, enrolled, {t("who.map.this_clip", lang): clip} if clip else None)
    counts = {k: sum(p["kind"] == k for p in found["points"]) for k in ("known", "enrolled", "clip")}
    parts = []
    if counts["known"]:
        parts.append(t("who.map.known", lang, n=counts["known"]))
    elif found["known_from"] is None:
        parts.append(t("who.map.no_known", lang))
    parts.append(
        t("who.map.enrolled_one" if counts["enrolled"] == 1 else "who.map.enrolled", lang, n=counts["enrolled"])
    )
    if counts["clip"]:
        parts.append(t("who.map.clip", lang))
    share = sum(found["explained"])
    caption = t("who.map.caption", lang, parts=t("who.map.sep", lang).join(parts), share=f"{share:.0%}")
    return {**found, "counts": counts, "caption": caption}


# --------------------------------------------------------------------------- the example clips

CLIPS = settings.ASSETS / "clips"
# (name to enrol, clip stem): the real voices shipped in assets/clips (assets/README.md credits them)
EXAMPLE_PEOPLE = [
    ("Woman 0036", "woman-0036"),
    ("Man 0482", "man-0482"),
    ("Girl 0006", "girl-0006"),
    ("George", "george"),
    ("Jackson", "jackson"),
]


def example_clips(folder: Path = CLIPS) -> dict:
    """The app's gr.Examples from the shipped clips: {"enrol": [[name, clip]] (clips 1 and 2 of
    each person), "identify": [[clip]] (their unheard clip 3), "pairs": [[clip A, clip B]] (two
    same-speaker pairs, two different-speaker pairs)}; empty lists when the folder is missing."""

    def clip(stem: str, n: int) -> str | None:
        path = folder / f"{stem}_{n}.flac"
        return str(path) if path.is_file() else None

    enrol = [[name, c] for name, stem in EXAMPLE_PEOPLE for n in (1, 2) if (c := clip(stem, n))]
    identify = [[c] for _, stem in EXAMPLE_PEOPLE if (c := clip(stem, 3))]
    wanted = [
        (("woman-0036", 1), ("woman-0036", 3)),
        (("woman-0036", 3), ("man-0482", 3)),
        (("girl-0006", 1), ("girl-0006", 3)),
        (("george", 3), ("jackson", 3)),
    ]
    pairs = [[a, b] for (sa, na), (sb, nb) in wanted if (a := clip(sa, na)) and (b := clip(sb, nb))]
    return {"enrol": enrol, "identify": identify, "pairs": pairs}
