"""Why a bidirectional model needs the future: one real clip streamed through a phoneme run at
several look-aheads, each compared frame by frame with the run on the whole clip (the Learn tab;
bench/bench_live.py measures the same over many clips, README: Live)."""

from __future__ import annotations

from hwml.i18n import t
from hwml.settings import ASSETS

EXAMPLE_CLIP = ASSETS / "clips" / "woman-0036_3.flac"
LOOKAHEADS = (0, 10, 30, 50, 100)  # frames (10 ms each)
CHUNK_SAMPLES = 4000  # 0.25 s at 16 kHz, as the Live tab streams


def lookahead_table(run_dir, clip=EXAMPLE_CLIP, lang: str = "en") -> list[dict]:
    """Rows {look-ahead, agree}: the share of frames where streaming with that look-ahead gives
    the whole-clip label."""
    import torch

    from hwml.audio.decode import load_audio
    from hwml.audio.features import featurize
    from hwml.audio.params import FeatureParams
    from hwml.machine import single_thread
    from hwml.phoneme.predict import one_utterance, predict_logits
    from hwml.phoneme.stream import PhoneStream
    from hwml.runs.cache import loaded_run

    model, config = loaded_run(run_dir)
    wave = load_audio(clip)
    rows = []
    with single_thread():
        feats = featurize(wave, FeatureParams.from_dict(config["features"]))
        whole = predict_logits(model, config, one_utterance(feats, "clip", config["class_names"])).argmax(1)
        for frames in LOOKAHEADS:
            stream = PhoneStream(model, config, lookahead=frames)
            parts = [stream.push(wave[i : i + CHUNK_SAMPLES]).ids for i in range(0, len(wave), CHUNK_SAMPLES)]
            ids = torch.cat(parts + [stream.finish().ids])
            rows.append(
                {
                    t("col.lookahead", lang): f"{stream.lookahead * 10} ms",
                    t("col.agree", lang): f"{float((ids == whole).float().mean()):.1%}",
                }
            )
            if not stream.sequence:  # a frame model has one look-ahead: its context
                break
    return rows
