"""HW2 phone classifiers. Every one returns LOGITS (pitfall 6: the course returned
log_softmax and then applied CrossEntropyLoss's softmax on top) and initialises every
parameter explicitly (pitfall 2).

- `Linear`: one linear layer over stacked frames. Trained by gradient descent it is logistic
  regression; filled in closed form (`fit_gaussian`) it is the Gaussian generative classifier
  with shared covariance, whose posterior is exactly such a linear softmax (Lecture 2).
- `MLP`: the course sample (`simple`) and the wider, normalised, regularised presets.
- `BiRNN`: a bidirectional GRU/LSTM over whole utterances (the `boss` preset).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwml.models import register


def init_linear(layer: nn.Linear, kind: str = "kaiming") -> None:
    """kaiming: He-normal for ReLU nets, zero bias. torch: nn.Linear's own default (the course
    sample's), written out so that it is explicit and does not drift with torch versions."""
    if kind == "torch":
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.uniform_(layer.bias, -bound, bound)
    elif kind == "kaiming":
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    elif kind == "small":  # output layers: start near uniform predictions
        nn.init.normal_(layer.weight, std=0.01)
        nn.init.zeros_(layer.bias)
    else:
        raise ValueError(f"unknown init {kind!r}")


def init_norm(norm: nn.Module) -> None:
    if getattr(norm, "weight", None) is not None:
        nn.init.ones_(norm.weight)
        nn.init.zeros_(norm.bias)
    if isinstance(norm, nn.BatchNorm1d):
        norm.reset_running_stats()


@register("linear")
class Linear(nn.Module):
    """Logits = W x + b over one stacked frame window (in_dim = 39 * concat_nframes)."""

    def __init__(self, in_dim: int, n_classes: int, input_norm: bool = True):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_dim, affine=False) if input_norm else nn.Identity()
        self.out = nn.Linear(in_dim, n_classes)
        init_norm(self.norm)
        init_linear(self.out, "small")

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(x))

    @torch.no_grad()
    def fit_gaussian(self, class_sums: Tensor, counts: Tensor, scatter: Tensor, shrinkage: float = 1e-3) -> None:
        """Closed-form generative classifier with one covariance shared by all classes.

        class_sums (C, D), counts (C,), scatter (D, D) = sum of x x^T over all frames (float64).
        With mu_c the class means and S the pooled within-class covariance, the class posterior
        is softmax_c(w_c . x + b_c) with w_c = S^-1 mu_c, b_c = -mu_c . S^-1 mu_c / 2 + log P(c).
        Classes never seen get a very low bias (they are never predicted).
        """
        if not isinstance(self.norm, nn.Identity):
            raise ValueError("fit_gaussian needs input_norm=False")
        counts = counts.double()
        seen = counts > 0
        means = class_sums.double() / counts.clamp(min=1)[:, None]
        n, n_classes = counts.sum(), int(seen.sum())
        within = scatter.double() - (means.T * counts) @ means
        cov = within / max(float(n) - n_classes, 1.0)
        cov += torch.eye(cov.shape[0], dtype=cov.dtype) * shrinkage * cov.diagonal().mean().clamp(min=1e-12)
        prec_means = torch.linalg.solve(cov, means.T).T  # (C, D) = mu_c S^-1
        bias = -0.5 * (prec_means * means).sum(1) + torch.log(counts.clamp(min=1) / n)
        bias[~seen] = -1e4
        self.out.weight.copy_(prec_means.to(self.out.weight.dtype))
        self.out.bias.copy_(bias.to(self.out.bias.dtype))


@register("mlp")
class MLP(nn.Module):
    """Stacked frames -> hidden layers (Linear [-> BatchNorm] -> ReLU [-> Dropout]) -> logits.

    The course sample is MLP(429, 39, hidden=[1024, 512, 128]) with norm="none", dropout=0,
    input_norm=False, init="torch": exactly its layers, activations and initial weights.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden=(1024, 512, 128),
        norm: str = "batch",
        dropout: float = 0.0,
        input_norm: bool = True,
        init: str = "kaiming",
    ):
        super().__init__()
        if norm not in ("none", "batch", "layer"):
            raise ValueError(f"unknown norm {norm!r}: use none, batch or layer")
        self.input_norm = nn.BatchNorm1d(in_dim, affine=False) if input_norm else nn.Identity()
        layers, width = [], in_dim
        for size in hidden:
            linear = nn.Linear(width, size)
            init_linear(linear, init)
            layers.append(linear)
            if norm != "none":
                layers.append(nn.BatchNorm1d(size) if norm == "batch" else nn.LayerNorm(size))
                init_norm(layers[-1])
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_classes)
        init_linear(self.out, "torch" if init == "torch" else "small")
        init_norm(self.input_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(self.input_norm(x)))


@register("birnn")
class BiRNN(nn.Module):
    """Whole utterances (B, T, in_dim) -> per-frame logits (B, T, n_classes).

    Input normalisation (statistics of real frames only) -> a 1-D convolution over `kernel`
    neighbouring frames (replicate padding: the edge-repeat the course uses for context) ->
    optionally `subsample`-fold average pooling in time -> a bidirectional GRU/LSTM stack run
    on packed sequences, so padding never reaches a real frame's state -> (with subsampling:
    repeated back to the frame rate and joined with the convolution's features) a linear layer
    per frame. Subsampling by 2 halves the recurrent cost, which on a CPU is most of the step.
    Padded positions are overwritten with the utterance's last real frame, so every frame sees
    exactly what it sees when its utterance is run alone.
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int,
        hidden: int = 256,
        layers: int = 3,
        kernel: int = 5,
        channels: int = 256,
        dropout: float = 0.2,
        cell: str = "gru",
        subsample: int = 1,
    ):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"unknown cell {cell!r}: use gru or lstm")
        if subsample < 1:
            raise ValueError(f"subsample must be >= 1, got {subsample}")
        self.subsample = subsample
        self.norm = nn.BatchNorm1d(in_dim, affine=False)
        self.conv = nn.Conv1d(in_dim, channels, kernel, padding=kernel // 2, padding_mode="replicate")
        self.drop = nn.Dropout(dropout)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(
            channels,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out = nn.Linear(2 * hidden + (channels if subsample > 1 else 0), n_classes)
        init_norm(self.norm)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)
            elif name.startswith("weight_hh"):
                for block in p.chunk(3 if cell == "gru" else 4, 0):
                    nn.init.orthogonal_(block)
            else:
                nn.init.zeros_(p)
                if cell == "lstm" and name.startswith("bias_ih"):  # forget gate open: remember by default
                    p.data[hidden : 2 * hidden] = 1.0
        init_linear(self.out, "small")

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T, _ = x.shape
        lengths = torch.full((B,), T, dtype=torch.long) if lengths is None else lengths
        lengths = lengths.to(x.device)
        pos = torch.minimum(torch.arange(T, device=x.device)[None, :], (lengths - 1).clamp(min=0)[:, None])
        last = lambda h: h.gather(1, pos[:, :, None].expand(-1, -1, h.shape[2]))  # noqa: E731  padding = last real frame
        mask = torch.arange(T, device=x.device)[None, :] < lengths[:, None]
        h = torch.zeros_like(x)
        h[mask] = self.norm(x[mask])  # statistics over real frames only
        feats = self.drop(last(torch.relu(self.conv(last(h).transpose(1, 2))).transpose(1, 2)))
        h, steps = feats, lengths
        if self.subsample > 1:
            h = F.avg_pool1d(h.transpose(1, 2), self.subsample, self.subsample, ceil_mode=True).transpose(1, 2)
            steps = (lengths + self.subsample - 1) // self.subsample
        if bool((steps == h.shape[1]).all()):
            h, _ = self.rnn(h)
        else:
            h_steps = h.shape[1]  # the input's padded length, even when no row fills it (a DDP slice)
            packed = nn.utils.rnn.pack_padded_sequence(h, steps.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = self.rnn(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=h_steps)
        if self.subsample > 1:
            h = torch.cat([h.repeat_interleave(self.subsample, dim=1)[:, :T], feats], dim=2)
        return self.out(self.drop(h))
