"""HW4 models: batch-first, masks carried through encoder and pooling, heads, initialisation."""

import itertools

import pytest
import torch
from conformer import ConformerBlock

from hwml.models import build_model
from hwml.models.speaker import (
    AMSoftmaxHead,
    AttentiveStatsPool,
    SelfAttentivePool,
    SpeakerClassifier,
    masked_batch_norm,
)

SMALL = dict(n_classes=5, d_model=16, heads=2, ff_dim=32, depth=2, conv_kernel=7, dropout=0.1)
COMBOS = list(itertools.product(("transformer", "conformer"), ("mean", "sap", "asp")))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(encoder="conformer", pooling="mean", **kw):
    torch.manual_seed(0)
    return SpeakerClassifier(**{**SMALL, "encoder": encoder, "pooling": pooling, **kw})


@pytest.mark.parametrize("encoder,pooling", COMBOS)
@pytest.mark.parametrize("norm,subsample", [("none", 1), ("utterance", 2), ("global", 3)])
def test_padding_never_changes_the_embedding(encoder, pooling, norm, subsample):
    """The same utterance alone, or padded (with -20 or garbage) inside a batch: same output."""
    stats = dict(input_mean=[-1.0] * 40, input_std=[2.0] * 40) if norm == "global" else {}
    model = small(encoder, pooling, input_norm=norm, norm_first=True, subsample=subsample, **stats).eval()
    gen = torch.Generator().manual_seed(1)
    utt = torch.randn(1, 23, 40, generator=gen)
    alone_emb, alone_logits = model.embed(utt), model(utt)
    for pad_value in (-20.0, 1e3):
        batch = torch.randn(3, 61, 40, generator=gen)
        batch[1] = pad_value
        batch[1, :23] = utt[0]
        mask = torch.ones(3, 61, dtype=torch.bool)
        mask[1, 23:] = False
        mask[2, 40:] = False
        torch.testing.assert_close(model.embed(batch, mask)[1], alone_emb[0], atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(model(batch, mask)[1], alone_logits[0], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("encoder", ["transformer", "conformer"])
def test_batch_members_never_mix(encoder):
    """pitfall 1: with time-major input attention mixes utterances; batch-first it cannot."""
    model = small(encoder, "sap").eval()
    x = torch.randn(4, 30, 40)
    out = model(x)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(model(x[perm]), out[perm], atol=2e-5, rtol=1e-4)
    x2 = x.clone()
    x2[0] += 5.0
    torch.testing.assert_close(model(x2)[1:], out[1:], atol=2e-5, rtol=1e-4)


def test_conformer_blocks_receive_batch_time_dim():
    model = small("conformer", "mean", depth=3)
    seen = []
    blocks = [m for m in model.modules() if isinstance(m, ConformerBlock)]
    assert len(blocks) == 3
    for block in blocks:
        block.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape, args[1].shape, out.shape)))
    x, mask = torch.randn(5, 37, 40), torch.ones(5, 37, dtype=torch.bool)
    model(x, mask)
    assert seen == [((5, 37, 16), (5, 37), (5, 37, 16))] * 3


def test_conformer_training_mode_ignores_padding():
    """In training too (batch statistics), padding content and amount never reach real frames."""
    model = small("conformer", "asp", dropout=0.0).train()
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(20, 40, generator=gen), torch.randn(33, 40, generator=gen)
    outs = []
    for width, pad in ((33, 0.0), (50, -20.0), (64, 1e3)):
        batch = torch.full((2, width, 40), pad)
        batch[0, :20], batch[1, :33] = a, b
        mask = torch.zeros(2, width, dtype=torch.bool)
        mask[0, :20], mask[1, :33] = True, True
        outs.append(model.embed(batch, mask))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=2e-5, rtol=1e-4)


def test_masked_batch_norm_counts_real_frames_only():
    x = torch.randn(2, 4, 9)
    x[0, :, 6:] = 1e4  # padded frames with wild values
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 6:] = False
    bn = torch.nn.BatchNorm1d(4).train()
    y = masked_batch_norm(bn, x, mask)
    real = torch.cat([x[0, :, :6], x[1]], dim=1)
    expect = (real - real.mean(1, keepdim=True)) / torch.sqrt(real.var(1, unbiased=False, keepdim=True) + bn.eps)
    torch.testing.assert_close(torch.cat([y[0, :, :6], y[1]], dim=1), expect, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bn.running_mean, 0.1 * real.mean(1))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * real.var(1, unbiased=True))
    bn.eval()
    torch.testing.assert_close(masked_batch_norm(bn, x, mask), bn(x))


def test_sap_asp_shapes_and_gradients():
    x = torch.randn(3, 11, 8, requires_grad=True)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[0, 4:] = False
    for pool, width in ((SelfAttentivePool(8), 8), (AttentiveStatsPool(8), 16)):
        out = pool(x, mask)
        assert out.shape == (3, width)
        out.square().sum().backward()
        assert all(
            p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in pool.parameters()
        )
        assert torch.all(x.grad[0, 4:] == 0), "padded frames must get no gradient"
        x.grad = None
    w = SelfAttentivePool(8).weights(x.detach(), mask)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    assert torch.all(w[0, 4:] == 0)


def test_asp_std_is_the_weighted_standard_deviation():
    pool = AttentiveStatsPool(4)
    with torch.no_grad():
        pool.context.zero_()  # uniform weights: plain mean and population std
    x = torch.randn(2, 9, 4)
    out = pool(x, torch.ones(2, 9, dtype=torch.bool))
    torch.testing.assert_close(out[:, :4], x.mean(1))
    torch.testing.assert_close(out[:, 4:], x.std(1, unbiased=False), atol=1e-4, rtol=1e-4)


def test_am_softmax_margin_only_in_training():
    head = AMSoftmaxHead(6, 4, s=30.0, m=0.3)
    emb, target = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0])
    logits = head(emb)
    cos = torch.nn.functional.normalize(emb, dim=-1) @ torch.nn.functional.normalize(head.weight, dim=-1).T
    torch.testing.assert_close(logits, 30.0 * cos)
    assert logits.abs().max() <= 30.0 + 1e-4
    margined = head.margin(logits, target)
    diff = logits - margined
    assert torch.allclose(diff[torch.arange(5), target], torch.full((5,), 9.0))
    diff[torch.arange(5), target] = 0
    assert torch.all(diff == 0)

    model = small("transformer", "asp", head="amsoftmax", emb_dim=12, s=30.0, m=0.3)
    x, y = torch.randn(4, 20, 40), torch.tensor([0, 1, 2, 3])
    logits = model(x)
    model.eval()
    assert torch.equal(model.margin(logits, y), logits)
    model.train()
    assert not torch.equal(model.margin(logits, y), logits)
    loss = torch.nn.functional.cross_entropy(model.margin(model(x), y), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    assert model.embed(x).shape == (4, 12)


@pytest.mark.parametrize("encoder,pooling", COMBOS)
def test_initialisation_is_explicit_and_seeded(encoder, pooling):
    """pitfall 2: nothing uninitialised; the same seed builds the same weights."""
    spec = {
        "name": "speaker_classifier",
        "kwargs": {**SMALL, "encoder": encoder, "pooling": pooling, "head": "amsoftmax", "emb_dim": 8},
    }
    states = []
    for _ in range(2):
        garbage = torch.empty(1 << 16).fill_(float("nan"))  # leave NaNs in freed memory
        del garbage
        torch.manual_seed(3)
        states.append(build_model(spec).state_dict())
    for k, v in states[0].items():
        assert torch.isfinite(v.float()).all(), k
        assert torch.equal(v, states[1][k]), k
    torch.manual_seed(4)
    other = build_model(spec).state_dict()
    assert not torch.equal(other["prenet.weight"], states[0]["prenet.weight"])


def test_course_sample_shape_of_simple_model():
    """simple == the course's Classifier: 40->80 prenet, 1 layer nhead 2 ff 256, 2-layer head."""
    model = SpeakerClassifier(n_classes=600, d_model=80, heads=2, ff_dim=256, depth=1, head_hidden=80)
    layer = model.encoder.layers[0]
    assert layer.self_attn.batch_first and layer.self_attn.num_heads == 2
    assert layer.linear1.out_features == 256 and not layer.norm_first
    assert [m.out_features for m in model.head.net if isinstance(m, torch.nn.Linear)] == [80, 600]
    # the course model has 40*80+80 + encoder + 80*80+80 + 80*600+600 parameters
    enc = sum(p.numel() for p in layer.parameters())
    assert sum(p.numel() for p in model.parameters()) == 40 * 80 + 80 + enc + 80 * 80 + 80 + 80 * 600 + 600
