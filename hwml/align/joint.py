"""Joint alignment: hwml's Viterbi scored by its own model and by agreement with PocketSphinx.

Two acoustic models that err in different places: hwml's phoneme model (trained on the built-in
corpus and real speech, sharp at phone identity) and PocketSphinx's en-us HMMs (thousands of
hours of American English, sharp at timing: `hwml.align.pocketsphinx`). The joint path is
hwml's Viterbi (`hwml.align.viterbi`) through the transcript's graph, each frame and state
scoring hwml's log-posterior plus an agreement term: 0 where PocketSphinx's alignment has the
state's phone at that frame, -`penalty` where it has another. A `sil` unit before a stop (the
stop's closure) agrees with PocketSphinx's silence or with that stop (PocketSphinx labels the
closure as the stop); a flap `dx` agrees with t or d; `ah` and `ih` agree with each other.
hwml's log-posteriors are first divided by `PRIOR_SCALE` x their prior (`scaled`), which
lets rare classes (the stops' bursts) win frames that silence would take.

Silence between words is a cost, not a minimum: entering an optional word-gap `sil` costs
`sil_cost` (a log-score), so a pause is taken only where the frames pay for it, and a vowel is
not swallowed by a cheap silence.
"""

from __future__ import annotations

import numpy as np

from hwml.align import viterbi
from hwml.data.phones import PHONES_39

PENALTY = 4.0  # log-score a state loses where PocketSphinx has another phone at that frame
SIL_COST = 0.0  # log-score of entering an optional silence between words (tried 2, 5: no gain)
JOINT_MIN_FRAMES = 2  # 20 ms: the agreement term, not the minimum, keeps phones from collapsing
PRIOR_SCALE = 0.3  # hwml's log-posteriors minus 0.3 x log prior: partly scaled likelihoods

# PocketSphinx's dictionary spells every reduced vowel AH (no IX): a schwa agrees with either
_AGREES = {"dx": ("dx", "t", "d"), "ah": ("ah", "ih"), "ih": ("ih", "ah")}


def scaled(logps: list[np.ndarray], scale: float = PRIOR_SCALE) -> list[np.ndarray]:
    """Each utterance's (T, C) log-posteriors minus `scale` x the log of the mean posterior over
    all of them (the class prior of the corpus being aligned)."""
    if not scale or not logps:
        return logps
    frames = np.concatenate(logps)
    log_prior = np.log(np.exp(frames).mean(0) + 1e-12)
    return [lp - scale * log_prior for lp in logps]


def agreement_bonus(
    graph: viterbi.Graph,
    ps_labels: np.ndarray,
    *,
    penalty: float = PENALTY,
    sil_cost: float = SIL_COST,
) -> np.ndarray:
    """(T, S) score added to each frame and state of `graph`: 0 where PocketSphinx's (T,)
    39-class `ps_labels` agree with the state's unit, -penalty where not; -sil_cost on the first
    state of each optional word-gap silence (paid once per pause when units last >= 2 frames)."""
    T, U = len(ps_labels), len(graph.units)
    agree = np.zeros((T, U), bool)
    for u, unit in enumerate(graph.units):
        names = _AGREES.get(unit.phone, (unit.phone,)) + ((unit.closure,) if unit.closure else ())
        allowed = [PHONES_39.index(n) for n in names if n in PHONES_39]
        agree[:, u] = np.isin(ps_labels, allowed)
    per_unit = np.where(agree, 0.0, -float(penalty))
    bonus = per_unit[:, graph.unit]
    if sil_cost:
        first = np.r_[True, np.diff(graph.unit) != 0]
        gap = np.array([graph.units[u].phone == "sil" and graph.units[u].word < 0 for u in graph.unit])
        bonus[:, first & gap] -= float(sil_cost)
    return bonus


def align(
    logp: np.ndarray,
    graph: viterbi.Graph,
    ps_labels: np.ndarray,
    source="utterance",
    *,
    penalty: float = PENALTY,
    sil_cost: float = SIL_COST,
) -> viterbi.Alignment:
    """The joint alignment of one utterance (see the module doc)."""
    bonus = agreement_bonus(graph, ps_labels, penalty=penalty, sil_cost=sil_cost)
    path = viterbi.viterbi(logp, graph, source, bonus=bonus)
    return viterbi.align(logp, graph, source, path=path)
