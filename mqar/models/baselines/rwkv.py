"""RWKV time-mixing, version 4 (Peng et al. 2023), in plain torch.

Which version, and why: the ReBased repository's `rwkv` baseline (`src/mixers/rwkv.py`, `RWKVTimeMixer`) compiles
the RWKV-4 WKV CUDA kernel (`rwkv/v4/wkv_cuda.cu`) and uses RWKV-4's time-mixing: per-channel `time_decay` and
`time_first`, token shift with `time_mix_{k,v,r}`, no heads, no output gate other than sigmoid(receptance). The
ReBased grid runs it in both of the 2 layers (no short-conv layer in front), built with n_layer=2, each layer in
the usual pre-norm block. Zoology's Figure-2 `rwkv` is the same RWKV-4 time mixer (same
kernel), but stacked 4 deep with the class default n_layer=12 for the init curves; our `rwkv` arch is ReBased's,
`rwkv-zoology` Zoology's (`num_layers` below is that n_layer: it sets the init curves, not the depth).
So: RWKV-4.

Per channel, with w = -exp(time_decay) (a decay per step) and u = time_first (a bonus for the current token):

    wkv_t = (Σ_{i<t} e^{(t-1-i)·w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i<t} e^{(t-1-i)·w + k_i} + e^{u + k_t})
    out   = output(sigmoid(r) ⊙ wkv)

Two implementations, tested against each other in fp64:
- "sequential": RWKV-4's numerically stable recurrence (numerator, denominator and the running max exponent p),
  one position at a time — the reference, the same arithmetic as the CUDA kernel;
- "parallel": the same state as an associative log-space scan (`scan.parallel_scan`): an element is the state
  contribution e^m·(a, b) of a span of n positions; composing two spans decays the earlier by e^{n₂·w} and re-bases
  both on the larger exponent, so nothing overflows.

Initialisation: RWKV-4's "fancy" init of time_decay, time_first and time_mix (depends on the layer index); the
Linear weights get the LM's N(0, 0.02) init — as in the ReBased code, whose `_init_weights` overrides RWKV's own
orthogonal/zero init (`init_rwkv` is never called there), and in Zoology's `zoology/model.py`, whose `_init_weights`
is the same. The output projection is named `output` in both, so neither rescales it, nor do we. Precision: the
ReBased kernel runs WKV in fp32 and returns bf16 (RWKV_FLOAT_MODE=bf16); ours returns the input dtype (fp32 under the
fp32 recipe).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mqar.models.baselines.scan import parallel_scan

WKV_IMPLS = ("parallel", "sequential")


def wkv_sequential(time_decay: torch.Tensor, time_first: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RWKV-4 WKV, one position at a time: time_decay, time_first [channels]; k, v [batch, seq, channels]."""
    w = -torch.exp(time_decay)
    numerator = torch.zeros_like(k[:, 0])  # Σ e^{exponent - max_exponent} v over the past, [batch, channels]
    denominator = torch.zeros_like(k[:, 0])
    max_exponent = torch.full_like(k[:, 0], -math.inf)
    outputs = []
    for t in range(k.shape[1]):
        k_t, v_t = k[:, t], v[:, t]
        # output: the past state plus the current token with its bonus u
        current = time_first + k_t
        top = torch.maximum(max_exponent, current)
        past_scale, current_scale = torch.exp(max_exponent - top), torch.exp(current - top)
        outputs.append((past_scale * numerator + current_scale * v_t) / (past_scale * denominator + current_scale))
        # state update: decay the past by e^w, add the current token without the bonus
        decayed = max_exponent + w
        top = torch.maximum(decayed, k_t)
        past_scale, current_scale = torch.exp(decayed - top), torch.exp(k_t - top)
        numerator = past_scale * numerator + current_scale * v_t
        denominator = past_scale * denominator + current_scale
        max_exponent = top
    return torch.stack(outputs, dim=1)


def wkv_parallel(time_decay: torch.Tensor, time_first: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RWKV-4 WKV by a log-space parallel scan; same arguments and result as `wkv_sequential`."""
    w = -torch.exp(time_decay)  # [channels]

    def combine(earlier: tuple[torch.Tensor, ...], later: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # A span's state is e^m·(a, b) over its n positions; the earlier span decays by e^{n_later·w}.
        span_1, exponent_1, numerator_1, denominator_1 = earlier
        span_2, exponent_2, numerator_2, denominator_2 = later
        exponent_1 = exponent_1 + span_2 * w
        top = torch.maximum(exponent_1, exponent_2)
        scale_1, scale_2 = torch.exp(exponent_1 - top), torch.exp(exponent_2 - top)
        return (
            span_1 + span_2,
            top,
            scale_1 * numerator_1 + scale_2 * numerator_2,
            scale_1 * denominator_1 + scale_2 * denominator_2,
        )

    span = torch.ones_like(k[..., :1])  # [batch, seq, 1]: each element covers one position
    _, exponent, numerator, denominator = parallel_scan((span, k, v, torch.ones_like(v)), combine)
    # The output at t reads the state through t-1 (shift right by one; an empty state has exponent -inf).
    exponent = F.pad(exponent[:, :-1], (0, 0, 1, 0), value=-math.inf)
    numerator = F.pad(numerator[:, :-1], (0, 0, 1, 0))
    denominator = F.pad(denominator[:, :-1], (0, 0, 1, 0))
    current = time_first + k
    top = torch.maximum(exponent, current)
    past_scale, current_scale = torch.exp(exponent - top), torch.exp(current - top)
    return (past_scale * numerator + current_scale * v) / (past_scale * denominator + current_scale)


def wkv(time_decay: torch.Tensor, time_first: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: str = "parallel") -> torch.Tensor:
    """RWKV-4 WKV in at least fp32 (exponents and sums over the sequence), returned in k's dtype."""
    if impl not in WKV_IMPLS:
        raise ValueError(f"unknown wkv impl {impl!r}; expected one of {WKV_IMPLS}")
    dtype = torch.promote_types(k.dtype, torch.float32)
    args = tuple(tensor.to(dtype) for tensor in (time_decay, time_first, k, v))
    out = wkv_parallel(*args) if impl == "parallel" else wkv_sequential(*args)
    return out.to(k.dtype)


class RWKVTimeMixer(nn.Module):
    """RWKV-4 time mixing: token shift, k/v/r projections, WKV, sigmoid(r) gate, output projection."""

    rescaled_out_proj = False  # its projection is `output`, which the ReBased init does not rescale

    def __init__(self, d_model: int, layer_index: int, num_layers: int = 2, impl: str = "parallel") -> None:
        super().__init__()
        if d_model < 2 or num_layers < 2:
            raise ValueError("RWKV's init needs d_model ≥ 2 and num_layers ≥ 2")
        if impl not in WKV_IMPLS:
            raise ValueError(f"unknown wkv impl {impl!r}; expected one of {WKV_IMPLS}")
        self.impl = impl
        ratio_0_to_1 = layer_index / (num_layers - 1)
        ratio_1_to_almost_0 = 1.0 - layer_index / num_layers
        channel = torch.arange(d_model, dtype=torch.float32)
        # Decay speeds from -5 (slow: e^{-e^{-5}} per step) to 3 (fast), spread by a power curve that steepens
        # with depth; the current-token bonus log(0.3) with a ±0.5 zigzag over channels.
        self.time_decay = nn.Parameter(-5 + 8 * (channel / (d_model - 1)) ** (0.7 + 1.3 * ratio_0_to_1))
        zigzag = 0.5 * (((channel.long() + 1) % 3) - 1).float()
        self.time_first = nn.Parameter(math.log(0.3) + zigzag)
        fraction = (channel / d_model).view(1, 1, d_model)  # [1, 1, d_model]
        self.time_mix_k = nn.Parameter(fraction**ratio_1_to_almost_0)
        self.time_mix_v = nn.Parameter(fraction**ratio_1_to_almost_0 + 0.3 * ratio_0_to_1)
        self.time_mix_r = nn.Parameter(fraction ** (0.5 * ratio_1_to_almost_0))
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.receptance = nn.Linear(d_model, d_model, bias=False)
        self.output = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        previous = F.pad(x[:, :-1], (0, 0, 1, 0))  # token shift: x_{t-1}, zeros at t = 0
        mix_k, mix_v, mix_r = self.time_mix_k, self.time_mix_v, self.time_mix_r
        k = self.key(x * mix_k + previous * (1 - mix_k))
        v = self.value(x * mix_v + previous * (1 - mix_v))
        r = self.receptance(x * mix_r + previous * (1 - mix_r))
        return self.output(torch.sigmoid(r) * wkv(self.time_decay, self.time_first, k, v, impl=self.impl))
