"""What a training run's settings cost, estimated from the settings alone, before anything is allocated.

A request from a visitor (or a typo on the command line) must never be able to take the whole
machine: `d_model=4096, depth=64, ff_dim=65536` builds a 38-billion-parameter Transformer whose
AdamW state alone is 600 GB. So every run's settings are priced here first, with no torch and no
data: `estimate(settings)` gives the parameter count, the bytes one training step holds (weights,
gradients and AdamW's two moments: 16 bytes a parameter, plus the activations kept for backward,
or the inference batch, whichever is larger) and the floating-point operations of one step
(forward + backward, about 3x forward). hwml.train.checks refuses a run over the budgets of
hwml.settings (`HWML_MAX_TRAIN_MB`, `HWML_MAX_STEP_GFLOP`). The figures are deliberate
over-estimates (fp32, every intermediate counted once, attention matrices materialised): a run
that passes them fits; README's Safety section gives the constants behind them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwml.audio.params import MFCC_DIM, N_MELS  # HW2 features per frame, HW4 log-mel bins

FLOAT = 4  # bytes: runs train in fp32 on CPU (bf16 autocast on CUDA only halves the activations)
STATE_BYTES = 16  # per parameter: weights, gradients, AdamW's exp_avg and exp_avg_sq
PHONES = 39
# allocator slack, autograd's saved copies, backward's transient buffers: measured on a 6.7M-parameter
# Transformer (batch 64, 64 tokens, depth 8) the step's peak was 1.5x the activations counted here
ACTIVATION_SLACK = 2
SPEAKERS_ASSUMED = 1000  # the head is priced for this many speakers (the course's set has 600)


@dataclass(frozen=True)
class Cost:
    params: int
    bytes: int
    flops: int

    def describe(self) -> str:
        size = f"{self.params / 1e6:,.1f}M parameters, ~{self.bytes / 2**20:,.0f} MiB"
        return f"{size}, ~{self.flops / 1e9:,.1f} GFLOP a step"


def estimate(s: dict) -> Cost:
    """The cost of one training step of a run with these (complete, merged) settings."""
    if "encoder" in s:
        return _speaker(s)
    return _phoneme(s)


def _cost(params: int, train_floats: int, eval_floats: int, forward_flops: int) -> Cost:
    activations = max(train_floats, eval_floats) * FLOAT * ACTIVATION_SLACK
    return Cost(int(params), int(params * STATE_BYTES + activations), int(3 * forward_flops))


def _phoneme(s: dict) -> Cost:
    model = s.get("model", "mlp")
    concat = int(s.get("concat_nframes", 1))
    d_in = concat * MFCC_DIM
    batch = int(s.get("batch_size", 1))
    eval_batch = int(s.get("eval_batch", 8192))
    if model == "gaussian":  # float64 scatter (D, D) and its inverse, a few copies
        floats64 = 4 * d_in * d_in + 2 * eval_batch * d_in
        return Cost(d_in * PHONES, 8 * floats64 * ACTIVATION_SLACK, 2 * batch * d_in * d_in)
    if model == "linear":
        params = d_in * PHONES + PHONES
        return _cost(params, batch * (2 * d_in + 3 * PHONES), eval_batch * (d_in + PHONES), 2 * batch * params)
    if model == "birnn":
        h, layers = int(s.get("hidden", 128)), int(s.get("layers", 1))
        ch, k = int(s.get("channels", 128)), int(s.get("kernel", 5))
        lstm = sum(2 * 4 * h * ((ch if i == 0 else 2 * h) + h + 2) for i in range(layers))
        params = ch * k * d_in + ch + lstm + 2 * h * PHONES
        frames = batch * int(s.get("chunk_frames", 100))
        per_frame_train = d_in + 3 * ch + layers * 2 * h * 8 + 3 * PHONES  # gates, cells, outputs kept
        per_frame_eval = d_in + ch + 2 * h * 6 + PHONES
        eval_frames = int(s.get("eval_frames", 40000))
        return _cost(params, frames * per_frame_train, eval_frames * per_frame_eval, 2 * frames * params)
    hidden = s.get("hidden", [])
    widths = [d_in, *(hidden if isinstance(hidden, list) else [hidden]), PHONES]
    params = sum(a * b + 3 * b for a, b in zip(widths, widths[1:]))
    train = batch * (d_in + 5 * sum(widths[1:]))  # linear, norm, activation, dropout mask and output
    evals = eval_batch * (d_in + 2 * max(widths[1:]))
    return _cost(params, train, evals, 2 * batch * params)


def _speaker(s: dict) -> Cost:
    n, depth, heads = int(s["d_model"]), int(s["depth"]), int(s["heads"])
    ff, sub = int(s["ff_dim"]), int(s.get("subsample", 1))
    conformer = s.get("encoder") == "conformer"
    if conformer:  # two feed-forward modules of ff_mult x d_model, attention, the convolution module
        inner = max(1, ff // n) * n
        rel_pos = (2 * 512 + 1) * (n // heads)  # the package's relative position table (max_pos_emb 512)
        layer = 4 * n * inner + 10 * n * n + 2 * n * int(s.get("conv_kernel", 31)) + 20 * n + rel_pos
        per_token = 40 * n + 8 * inner
    else:
        layer = 4 * n * n + 2 * n * ff + 9 * n + ff
        per_token = 16 * n + 4 * ff
    head_hidden, emb = int(s.get("head_hidden", 0)), int(s.get("emb_dim", 0))
    pooled = (2 if s.get("pooling") == "asp" else 1) * n
    dim = emb or pooled
    head = pooled * emb + (
        dim * head_hidden + head_hidden * SPEAKERS_ASSUMED if head_hidden else dim * SPEAKERS_ASSUMED
    )
    params = N_MELS * sub * n + depth * layer + n * n + head
    tokens_per_item = max(1, int(s.get("segment_len", 128)) // sub)
    batch = int(s.get("batch_size", 16))
    attention = 3 * heads * tokens_per_item + (tokens_per_item * n // heads if conformer else 0) // batch
    train = batch * tokens_per_item * (depth * (per_token + attention) + N_MELS * sub)
    window = max(1, int(s.get("infer_window", 512)) // sub)
    eval_tokens = max(window, int(s.get("infer_frames", 16384)) // sub)
    evals = eval_tokens * (per_token // 2 + 2 * heads * window + N_MELS * sub)
    tokens = batch * tokens_per_item
    forward = 2 * tokens * (params - head) + depth * 4 * batch * tokens_per_item * tokens_per_item * n
    return _cost(params, train, evals, forward)
