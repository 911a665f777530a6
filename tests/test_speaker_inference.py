"""HW4 inference on CPU: batches spread over worker threads (one intra-op thread each) give the
same scores, in order, as the model on each utterance alone, and leave the thread count as it was."""

import torch

from hwml.data.types import UtteranceSet
from hwml.models import build_model
from hwml.speaker.inference import embed
from hwml.speaker.predict import predict_logits
from hwml.speaker.presets import MODEL_KEYS, MODEL_NAME
from hwml.speaker.task import resolve_settings


def tiny_model(preset: str):
    s = resolve_settings(preset, {"d_model": 16, "heads": 2, "ff_dim": 32, "emb_dim": 0})
    kwargs = {k: s[k] for k in MODEL_KEYS}
    kwargs.update(n_classes=5, n_mels=40, input_mean=[-8.0] * 40, input_std=[3.0] * 40)
    torch.manual_seed(0)
    return build_model({"name": MODEL_NAME, "kwargs": kwargs}), s


def utterances(n: int = 40) -> UtteranceSet:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 300, (n,), generator=gen)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
    feats = torch.randn(int(offsets[-1]), 40, generator=gen) * 3 - 8
    return UtteranceSet(feats, offsets, [str(i) for i in range(n)], None, [])


def test_threaded_inference_matches_one_utterance_at_a_time():
    before = torch.get_num_threads()
    utts = utterances()
    for preset in ("simple", "boss"):
        model, s = tiny_model(preset)
        config = {"settings": {**s, "infer_window": 128, "infer_frames": 600}}  # many batches, long ones windowed
        try:
            torch.set_num_threads(2)
            two = predict_logits(model, config, utts)
            assert torch.get_num_threads() == 2 and model.training  # restored
            torch.set_num_threads(1)
            one = predict_logits(model, config, utts)
        finally:
            torch.set_num_threads(before)
        torch.testing.assert_close(two, one)
        with torch.no_grad():
            model.eval()
            for i in range(len(utts)):
                if utts.lengths[i] <= 128:  # a single window: exactly the model on the utterance alone
                    torch.testing.assert_close(two[i], model(utts.utterance(i)[None])[0], atol=1e-4, rtol=1e-4)
            model.train()
        emb = embed(model, [utts.utterance(i) for i in range(5)], config)
        torch.testing.assert_close(emb.norm(dim=-1), torch.ones(5))
