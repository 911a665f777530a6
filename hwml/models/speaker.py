"""HW4 speaker classifiers: prenet -> encoder -> pooling -> head, batch-first and masked.

Every tensor is (batch, time, dim) and every batch carries a length mask (True = real frame),
so padding never reaches attention, the Conformer's convolution or its batch norm, nor the
pooling (pitfalls 1 and 4). Encoders: the course's `nn.TransformerEncoderLayer` or the
`conformer` package's `ConformerBlock`. Pooling: mean, self-attentive (SAP, Zhu et al. 2018)
or attentive statistics (ASP, Okabe et al. 2018). Heads: linear/MLP softmax or additive margin
softmax (AM-softmax, Wang et al. 2018). Parameters hwml adds are initialised explicitly
(pitfall 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conformer.conformer import ConformerBlock, DepthWiseConv1d
from torch import nn

from hwml.models import register


def full_mask(x: torch.Tensor) -> torch.Tensor:
    """A mask of all real frames for an unpadded batch (B, T, D) -> (B, T)."""
    return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)


def masked_batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over (B, C, T) whose training statistics count real frames only.

    In eval mode (running statistics) every frame is normalised independently, so the plain
    module is already exact; in training the padded frames must not shift mean and variance.
    """
    if not bn.training or bool(mask.all()):
        return bn(x)
    keep = mask[:, None, :].to(x.dtype)
    n = keep.sum()
    mean = (x * keep).sum((0, 2)) / n
    var = (((x - mean[None, :, None]) ** 2) * keep).sum((0, 2)) / n
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            bn.running_mean.lerp_(mean, bn.momentum)
            bn.running_var.lerp_(var * n / (n - 1).clamp(min=1), bn.momentum)
    y = (x - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + bn.eps)
    return y * bn.weight[None, :, None] + bn.bias[None, :, None]


class MaskedConformerBlock(ConformerBlock):
    """`conformer.ConformerBlock` (same modules and weights) with the length mask carried through.

    The package passes `mask` to attention only; its convolution module would still see padded
    frames. Here padded frames are zeroed before the depthwise convolution, excluded from the
    batch-norm statistics, and zeroed again after the block. Layout of conformer==0.3.2.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        net = self.conv.net
        assert isinstance(net[4], DepthWiseConv1d) and isinstance(net[5], nn.BatchNorm1d), (
            "unexpected conformer package layout; hwml is written against conformer==0.3.2"
        )

    def conv_masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        norm, to_bct, pointwise_in, glu, depthwise, bn, swish, pointwise_out, to_btc, drop = self.conv.net
        h = glu(pointwise_in(to_bct(norm(x)))) * mask[:, None, :].to(x.dtype)
        h = masked_batch_norm(bn, depthwise(h), mask)
        return drop(to_btc(pointwise_out(swish(h))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = full_mask(x) if mask is None else mask
        keep = mask.unsqueeze(-1).to(x.dtype)
        x = self.ff1(x) + x
        x = self.attn(x, mask=mask) + x
        x = self.conv_masked(x, mask) + x
        x = self.ff2(x) + x
        return self.post_norm(x) * keep


class TransformerEncoder(nn.Module):
    """Stack of `nn.TransformerEncoderLayer` (batch_first) with a key padding mask."""

    def __init__(self, d_model: int, depth: int, heads: int, ff_dim: int, dropout: float, norm_first: bool):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first)
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask) * keep
        return self.final_norm(x) * keep


class ConformerEncoder(nn.Module):
    """Stack of masked Conformer blocks (Gulati et al. 2020), head size d_model / heads."""

    def __init__(self, d_model: int, depth: int, heads: int, ff_mult: int, dropout: float, conv_kernel: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            MaskedConformerBlock(
                dim=d_model,
                dim_head=d_model // heads,
                heads=heads,
                ff_mult=ff_mult,
                conv_kernel_size=conv_kernel,
                attn_dropout=dropout,
                ff_dropout=dropout,
                conv_dropout=dropout,
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask.unsqueeze(-1).to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return x


class MeanPool(nn.Module):
    """Average over real frames only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(1) / keep.sum(1).clamp(min=1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over time (dim 1) with padded frames given zero weight."""
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=1)


class SelfAttentivePool(nn.Module):
    """SAP: w_t = softmax_t(v . tanh(W h_t + b)), output sum_t w_t h_t.

    The course notes leave v as `torch.FloatTensor(dim, 1)`, i.e. uninitialised memory; here
    every parameter is set explicitly.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.context = nn.Parameter(torch.empty(dim))
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.normal_(self.context, std=dim**-0.5)

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_softmax(torch.tanh(self.proj(x)) @ self.context, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.weights(x, mask).unsqueeze(-1) * x).sum(1)


class AttentiveStatsPool(SelfAttentivePool):
    """ASP: the SAP weights give a weighted mean and a weighted standard deviation, concatenated."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.weights(x, mask).unsqueeze(-1)
        mean = (w * x).sum(1)
        var = (w * x * x).sum(1) - mean * mean
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1)


class AMSoftmaxHead(nn.Module):
    """Additive margin softmax: logits s * cos(theta), minus s * m at the target in training only.

    Both the embedding and the class weights are L2-normalised, so evaluation logits are plain
    scaled cosines and the margin only shapes training.
    """

    def __init__(self, dim: int, n_classes: int, s: float, m: float):
        super().__init__()
        self.s, self.m = float(s), float(m)
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.s * (F.normalize(emb, dim=-1) @ F.normalize(self.weight, dim=-1).T)

    def margin(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """s * (cos - m) at the target class: the target must win by a margin m."""
        return logits - self.s * self.m * F.one_hot(target, logits.shape[-1]).to(logits.dtype)


class SoftmaxHead(nn.Module):
    """Linear classifier, optionally with one ReLU hidden layer (the course's 2-layer head)."""

    def __init__(self, dim: int, n_classes: int, hidden: int):
        super().__init__()
        self.net = (
            nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
            if hidden
            else nn.Linear(dim, n_classes)
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)

    def margin(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return logits


class InputNorm(nn.Module):
    """Standardise each mel bin: with training-set statistics ("global"), per utterance over its
    real frames ("utterance", removes channel offsets), or not at all ("none")."""

    def __init__(self, kind: str, mean: list | None, std: list | None, n_mels: int):
        super().__init__()
        self.kind = kind
        if kind == "global" and (mean is None or std is None):
            raise ValueError("input_norm='global' needs input_mean and input_std")
        self.register_buffer("mean", torch.tensor(mean if kind == "global" else [0.0] * n_mels))
        self.register_buffer("std", torch.tensor(std if kind == "global" else [1.0] * n_mels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "global":
            x = (x - self.mean) / self.std
        elif self.kind == "utterance":
            keep = mask.unsqueeze(-1).to(x.dtype)
            n = keep.sum(1, keepdim=True).clamp(min=1)
            mean = (x * keep).sum(1, keepdim=True) / n
            std = ((((x - mean) ** 2) * keep).sum(1, keepdim=True) / n).clamp(min=1e-6).sqrt()
            x = (x - mean) / std
        return x * mask.unsqueeze(-1).to(x.dtype)


def stack_frames(x: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) -> (B, ceil(T/k), k*D): k neighbouring frames side by side, so the encoder runs
    k times fewer steps. Padded frames are zeros either way, so an utterance alone and the same
    utterance padded in a batch stack identically; a stacked frame is real if any part is."""
    if k == 1:
        return x, mask
    pad = -x.shape[1] % k
    x = F.pad(x, (0, 0, 0, pad))
    mask = F.pad(mask, (0, pad))
    b, t, d = x.shape
    return x.reshape(b, t // k, k * d), mask.reshape(b, t // k, k).any(-1)


POOLINGS = ("mean", "sap", "asp")
ENCODERS = ("transformer", "conformer")
HEADS = ("softmax", "amsoftmax")
INPUT_NORMS = ("none", "global", "utterance")


@register("speaker_classifier")
class SpeakerClassifier(nn.Module):
    """(B, T, n_mels) log-mel frames + (B, T) mask -> (B, n_classes) logits.

    `embed` returns the speaker embedding: the pooled vector (after the optional `emb_dim`
    projection), i.e. the input of the classification head. `subsample` stacks that many frames
    per encoder step (cheaper attention and feed-forward); a Conformer's feed-forward width is
    ff_dim rounded to a multiple of d_model (the package's ff_mult).
    """

    def __init__(
        self,
        n_classes: int,
        n_mels: int = 40,
        d_model: int = 80,
        encoder: str = "transformer",
        depth: int = 1,
        heads: int = 2,
        ff_dim: int = 256,
        dropout: float = 0.1,
        norm_first: bool = False,
        conv_kernel: int = 31,
        pooling: str = "mean",
        head: str = "softmax",
        head_hidden: int = 0,
        emb_dim: int = 0,
        s: float = 30.0,
        m: float = 0.2,
        input_norm: str = "none",
        input_mean: list | None = None,
        input_std: list | None = None,
        subsample: int = 1,
    ):
        super().__init__()
        if encoder not in ENCODERS or pooling not in POOLINGS or head not in HEADS or input_norm not in INPUT_NORMS:
            raise ValueError(f"unknown encoder/pooling/head/input_norm: {encoder}/{pooling}/{head}/{input_norm}")
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.n_classes = n_classes
        self.input_norm = InputNorm(input_norm, input_mean, input_std, n_mels)
        self.subsample = subsample
        self.prenet = nn.Linear(n_mels * subsample, d_model)
        if encoder == "transformer":
            self.encoder = TransformerEncoder(d_model, depth, heads, ff_dim, dropout, norm_first)
        else:
            self.encoder = ConformerEncoder(d_model, depth, heads, max(1, ff_dim // d_model), dropout, conv_kernel)
        if pooling == "mean":
            self.pool = MeanPool()
        else:
            self.pool = SelfAttentivePool(d_model) if pooling == "sap" else AttentiveStatsPool(d_model)
        pooled = 2 * d_model if pooling == "asp" else d_model
        self.project = nn.Linear(pooled, emb_dim) if emb_dim else nn.Identity()
        dim = emb_dim or pooled
        self.head = (
            AMSoftmaxHead(dim, n_classes, s, m) if head == "amsoftmax" else SoftmaxHead(dim, n_classes, head_hidden)
        )
        self.emb_dim = dim

    def embed(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = full_mask(feats) if mask is None else mask
        x, mask = stack_frames(self.input_norm(feats, mask), mask, self.subsample)
        h = self.encoder(self.prenet(x), mask)
        return self.project(self.pool(h, mask))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits: what evaluation and prediction use (plain scaled cosines for AM-softmax)."""
        return self.head(self.embed(feats, mask))

    def margin(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The logits the training loss sees: the AM-softmax margin in training mode only."""
        return self.head.margin(logits, target) if self.training else logits
