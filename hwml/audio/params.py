"""Everything that decides the features, stored in every dataset and checkpoint (torch-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hwml.errors import HwmlError

SAMPLE_RATE = 16000
FEATURE_KINDS = ("mfcc39", "logmel40")


@dataclass(frozen=True)
class FeatureParams:
    """Everything that decides the features; stored in every dataset and checkpoint.

    cmvn: per-utterance mean/variance normalisation of each dimension; None picks the kind's
    default (on for mfcc39 as in HW2, off for logmel40 as in the course's HW4 features).
    """

    kind: str = "mfcc39"
    sample_rate: int = SAMPLE_RATE
    win_length: int = 400
    hop_length: int = 160
    n_fft: int = 400
    n_mels: int = 40
    n_mfcc: int = 13
    delta_win: int = 5
    f_min: float = 0.0
    f_max: float | None = None
    cmvn: bool | None = None

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise HwmlError(f"feature params: unknown kind {self.kind!r} (expected one of {', '.join(FEATURE_KINDS)})")
        if self.sample_rate != SAMPLE_RATE:
            raise HwmlError(f"feature params: sample_rate must be {SAMPLE_RATE} (audio is resampled to it)")
        if self.cmvn is None:
            object.__setattr__(self, "cmvn", self.kind == "mfcc39")
        ints = ("sample_rate", "win_length", "hop_length", "n_fft", "n_mels", "n_mfcc", "delta_win")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise HwmlError(f"feature params: {name} must be a positive integer, got {value!r}")
        if not (self.hop_length <= self.win_length <= self.n_fft):
            raise HwmlError("feature params: need hop_length <= win_length <= n_fft")
        if self.n_mfcc > self.n_mels or self.delta_win < 3:
            raise HwmlError("feature params: need n_mfcc <= n_mels and delta_win >= 3")
        if not isinstance(self.cmvn, bool):
            raise HwmlError(f"feature params: cmvn must be true or false, got {self.cmvn!r}")
        for name in ("f_min", "f_max"):
            value = getattr(self, name)
            if not (
                isinstance(value, (int, float)) and not isinstance(value, bool) or value is None and name == "f_max"
            ):
                raise HwmlError(f"feature params: {name} must be a number, got {value!r}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not (0 <= self.f_min < f_max <= nyquist):
            raise HwmlError(f"feature params: need 0 <= f_min < f_max <= {nyquist:g}")

    @property
    def dim(self) -> int:
        return 3 * self.n_mfcc if self.kind == "mfcc39" else self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureParams:
        if not isinstance(d, dict):
            raise HwmlError(f"feature params: expected an object, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise HwmlError(f"feature params: unknown keys {sorted(unknown)}")
        return cls(**d)


MFCC39 = FeatureParams(kind="mfcc39")


LOGMEL40 = FeatureParams(kind="logmel40")

MFCC_DIM = MFCC39.dim  # HW2: 13 MFCC + deltas + delta-deltas per frame
N_MELS = LOGMEL40.dim  # HW4: log-mel bins per frame
