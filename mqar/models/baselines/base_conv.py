"""BaseConv's long layer (Arora et al. 2023, Zoology): y = (h ∗ x + x) ⊙ linear(x) + x.

Zoology's Figure-2 `base_conv` stacks 4 BaseConv layers with kernel sizes [3, -1, 3, -1]: a short layer (the
gated short convolution mqar already has, `short-conv`: depthwise causal conv of width 3 ⊙ linear(x) + x), then a
long layer, twice. The long layer's convolution is Zoology's ImplicitLongConvolution: an implicit filter h (MLP width
16, frozen positional features, exponential window; `implicit_filter.py`) applied over the whole sequence, plus the
input itself (a skip of weight 1). Zoology's ImplicitLongConvolution also allocates a `bias` vector that its forward
never reads; we leave that dead parameter out (d_model fewer parameters per long layer).

Two implementations of the long convolution, tested against each other in fp64: "fft" (fast) and "direct" (the
reference).
"""

from __future__ import annotations

import torch
from torch import nn

from mqar.models.baselines.hyena import CONV_IMPLS, long_conv
from mqar.models.baselines.implicit_filter import ImplicitFilter


class LongConvMixer(nn.Module):
    """BaseConv with an implicit long convolution: (h ∗ x + x) ⊙ projection(x) + x."""

    def __init__(self, d_model: int, max_seq_len: int, filter_order: int = 16, impl: str = "fft") -> None:
        super().__init__()
        if impl not in CONV_IMPLS:
            raise ValueError(f"unknown long-convolution impl {impl!r}; expected one of {CONV_IMPLS}")
        self.impl = impl
        self.projection = nn.Linear(d_model, d_model)
        self.filter = ImplicitFilter(d_model, max_seq_len, order=filter_order, trainable_positions=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.transpose(1, 2)  # [batch, d_model, seq]
        conv = (long_conv(u, self.filter(x.shape[1]), self.impl) + u).transpose(1, 2)  # [batch, seq, d_model]
        return conv * self.projection(x) + x
