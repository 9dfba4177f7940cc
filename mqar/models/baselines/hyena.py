"""Hyena (Poli et al. 2023), order 2, one head, as Zoology configures it for its Figure 2 (`Hyena(d_model, l_max)`).

    x1, x2, v = short_conv(in_proj(x))          # in_proj: d -> 3d (bias); depthwise causal conv, width 3 (bias)
    y = out_proj(x2 ⊙ (h ∗ (x1 ⊙ v) + bias ⊙ (x1 ⊙ v)))

h is the implicit filter (MLP width 64, trainable positional features, exponential window; `implicit_filter.py`),
∗ a causal convolution over the whole sequence, `bias` a learned per-channel skip (Zoology's filter bias, N(0, 1)).
Zoology tags some filter parameters with their own lr / weight decay (`_optim`); the ReBased trainer (a Zoology
fork) builds one AdamW over all parameters, which ignores such tags, and so does mqar's.

Two implementations of the long convolution, tested against each other in fp64: "fft" (O(L log L), the fast path)
and "direct" (the reference, a loop over output positions). The Zoology grid stacks 4 Hyena layers.
"""

from __future__ import annotations

import torch
from torch import nn

from mqar.models.baselines.implicit_filter import ImplicitFilter
from mqar.models.baselines.scan import direct_causal_conv, fft_causal_conv

CONV_IMPLS = ("fft", "direct")


def long_conv(u: torch.Tensor, kernel: torch.Tensor, impl: str) -> torch.Tensor:
    """Causal convolution of u [..., channels, seq] with kernel [channels, ≥ seq]: the FFT path or the reference."""
    if impl == "fft":
        return fft_causal_conv(u, kernel)
    if impl == "direct":
        return direct_causal_conv(u, kernel)
    raise ValueError(f"unknown long-convolution impl {impl!r}; expected one of {CONV_IMPLS}")


class HyenaMixer(nn.Module):
    rescaled_out_proj = True  # Zoology's init rescales `out_proj`

    def __init__(
        self, d_model: int, max_seq_len: int, filter_order: int = 64, short_filter_order: int = 3, impl: str = "fft"
    ) -> None:
        super().__init__()
        if impl not in CONV_IMPLS:
            raise ValueError(f"unknown long-convolution impl {impl!r}; expected one of {CONV_IMPLS}")
        self.d_model = d_model
        self.impl = impl
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.short_filter = nn.Conv1d(
            3 * d_model, 3 * d_model, short_filter_order, groups=3 * d_model, padding=short_filter_order - 1
        )
        self.filter = ImplicitFilter(d_model, max_seq_len, order=filter_order, trainable_positions=True)
        self.bias = nn.Parameter(torch.randn(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.shape[1]
        u = self.in_proj(x).transpose(1, 2)  # [batch, 3·d_model, seq]
        u = self.short_filter(u)[..., :seq_len]  # causal: cut the tail of the padded output
        x1, x2, v = u.split(self.d_model, dim=1)  # each [batch, d_model, seq]
        v = v * x1
        v = long_conv(v, self.filter(seq_len), self.impl) + v * self.bias[:, None]
        return self.out_proj((v * x2).transpose(1, 2))
