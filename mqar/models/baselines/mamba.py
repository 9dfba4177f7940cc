"""Mamba (Gu & Dao 2023): the selective state-space mixer and Mamba's own residual block, in plain torch.

Shapes as in the ReBased grid's `mamba` (which builds `Mamba(d_model)` with the reference defaults): d_state 16,
depthwise causal conv of width 4 with bias, expand 2 (d_inner = 2·d_model), dt_rank = ceil(d_model / 16), no bias
on the in/out projections. Per channel d and state n:

    h_t[d, n] = exp(Δ_t[d]·A[d, n]) · h_{t-1}[d, n] + Δ_t[d] · B_t[n] · x_t[d]
    y_t[d]    = Σ_n C_t[n] · h_t[d, n] + D[d] · x_t[d],      then y ⊙ silu(z)

with Δ = softplus(dt_proj(x_proj(x)[:dt_rank])), B, C = the rest of x_proj(x), A = -exp(A_log).

Two implementations of the scan, tested against each other in fp64:
- "sequential": one position at a time (the reference);
- "parallel": a Hillis–Steele scan over (decay, drive) pairs, log2(seq) elementwise steps, with a hand-written
  backward (`scan.linear_recurrence`). It materialises the state [batch, seq, d_inner, d_state] (as Mamba's own
  reference path does), so memory grows with batch × seq; the trainer's micro-batching absorbs that on a GPU.

Initialisation: the constructor gives Mamba's own init (S4D-real A, dt bias the inverse softplus of a log-uniform
dt in [1e-3, 1e-1], dt_proj weight uniform ±dt_rank^-0.5). Inside `mqar.models.build_model` the language model then
re-initialises every Linear (N(0, 0.02), biases 0) and rescales `out_proj` — exactly what the ReBased code's
`_init_weights` does to its Mamba too (it ignores the reference's `_no_reinit` mark on the dt bias), so our mamba
starts where the paper's did.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mqar.models.baselines.scan import linear_recurrence

SCAN_IMPLS = ("parallel", "sequential")


def selective_scan(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    impl: str = "parallel",
) -> torch.Tensor:
    """The selective SSM: x, delta [batch, seq, d_inner]; A [d_inner, d_state]; B, C [batch, seq, d_state]; D [d_inner].

    Returns y [batch, seq, d_inner] (before the silu(z) gate). Runs in at least fp32 (the state accumulates over the
    whole sequence; bf16 would lose it), and returns x's dtype.
    """
    if impl not in SCAN_IMPLS:
        raise ValueError(f"unknown scan impl {impl!r}; expected one of {SCAN_IMPLS}")
    out_dtype = x.dtype
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, delta, A, B, C, D = (tensor.to(dtype) for tensor in (x, delta, A, B, C, D))
    decay = torch.exp(delta.unsqueeze(-1) * A)  # [batch, seq, d_inner, d_state], in (0, 1]
    drive = (delta * x).unsqueeze(-1) * B.unsqueeze(2)  # [batch, seq, d_inner, d_state]
    if impl == "parallel":
        states = linear_recurrence(decay, drive)  # [batch, seq, d_inner, d_state]
        y = torch.einsum("bldn,bln->bld", states, C)
    else:
        state = torch.zeros_like(drive[:, 0])  # [batch, d_inner, d_state]
        outputs = []
        for t in range(x.shape[1]):
            state = decay[:, t] * state + drive[:, t]
            outputs.append(torch.einsum("bdn,bn->bd", state, C[:, t]))
        y = torch.stack(outputs, dim=1)
    return (y + x * D).to(out_dtype)


class MambaBlock(nn.Module):
    """Mamba's residual block: x + mixer(RMSNorm(x)). No second norm and no MLP slot (unlike the LM's `Block`).

    This is the block the ReBased grid uses for `mamba` (its MambaBlock: add, RMSNorm (eps 1e-5), mixer).
    """

    def __init__(self, d_model: int, mixer: nn.Module) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.mixer = mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class MambaMixer(nn.Module):
    """The Mamba mixer: in_proj -> (x, z); x -> causal conv -> silu -> selective SSM; y ⊙ silu(z) -> out_proj."""

    rescaled_out_proj = True  # the LM rescales `out_proj` by 1/sqrt(2·n_layers), as the ReBased init does
    residual_block = MambaBlock  # the LM wraps this mixer in Mamba's block instead of its own pre-norm block

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        impl: str = "parallel",
    ) -> None:
        super().__init__()
        if impl not in SCAN_IMPLS:
            raise ValueError(f"unknown scan impl {impl!r}; expected one of {SCAN_IMPLS}")
        self.d_state = d_state
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.impl = impl
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

        # Mamba's own init (overridden for Linear layers inside build_model, as in the ReBased code: see above).
        dt_init_std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        # S4D-real: A[d, n] = -(n + 1), stored as its log so that A stays negative.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        seq_len = hidden.shape[1]
        x, z = self.in_proj(hidden).chunk(2, dim=-1)  # each [batch, seq, d_inner]
        # Depthwise conv over time: Conv1d wants [batch, channels, seq]; cutting the tail of the padded output
        # makes it causal.
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :seq_len].transpose(1, 2))
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # [batch, seq, d_inner]; dt_proj's bias is the delta bias
        A = -torch.exp(self.A_log.float())  # [d_inner, d_state]
        y = selective_scan(x, delta, A, B, C, self.D, impl=self.impl)
        return self.out_proj(y * F.silu(z))
