"""Sequence mixers: the one layer of each block that moves information between positions.

Each mixer maps hidden states [batch, seq, d_model] -> [batch, seq, d_model] and is causal. Shapes and defaults
follow the ReBased Figure-1 recipe (shared REFERENCE.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mqar.kernels import linear_attention
from mqar.models.norm import LayerNorm

# q/k transforms of the ReBased paper's Table-1 kernel ablation. Each is applied to the whole projection
# (all heads together, heads × feature_dim wide), before the split into heads, as in the public ReBased code.
QK_TRANSFORMS = ("identity", "layernorm", "norm", "gamma", "affine")


class ShortConvMixer(nn.Module):
    """Gated short depthwise causal convolution: y = conv(x) ⊙ linear(x) + x (Zoology's BaseConv, short kernel).

    The convolution is depthwise with a bias and `kernel_size` taps, left-padded so that position t sees t-k+1..t.
    """

    def __init__(self, d_model: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.projection = nn.Linear(d_model, d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model, padding=kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.shape[1]
        # Conv1d wants [batch, channels, seq]; symmetric padding + cutting the tail makes it causal.
        conv = self.conv(x.transpose(1, 2))[..., :seq_len].transpose(1, 2)  # [batch, seq, d_model]
        return conv * self.projection(x) + x


class SoftmaxAttention(nn.Module):
    """Causal multi-head softmax attention (torch SDPA), with biases and dropout on the attention weights."""

    rescaled_out_proj = True  # the out-projection gets the 1/sqrt(2·n_layers) init, as in Zoology's MHA
    input_only_feeds_matmuls = True  # x goes only into qkv_proj (see Block)

    def __init__(self, d_model: int, num_heads: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, d_model = x.shape
        qkv = self.qkv_proj(x).view(batch, seq_len, 3, self.num_heads, d_model // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, heads, seq, head_dim]
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, seq_len, d_model))


class FeatureScale(nn.Module):
    """x ⊙ γ (+ β): LayerNorm's learnable affine part without the normalisation (ablations (γx)², (γx+β)²)."""

    def __init__(self, dim: int, bias: bool) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta if self.beta is not None else x * self.gamma


def make_qk_transform(name: str, dim: int, impl: str = "auto") -> nn.Module:
    """The map applied to q and k before the similarity; `dim` = heads × feature_dim; `impl` the LayerNorm's."""
    if name == "identity":  # x²
        return nn.Identity()
    if name == "layernorm":  # ReBased: (γ·norm(x) + β)²
        return LayerNorm(dim, impl=impl)
    if name == "norm":  # norm(x)²
        # The public ReBased code's `Normalizer` for this row cannot run as published (it reads an epsilon it never
        # sets), so Table 1's norm(x)² came from code we cannot see: LayerNorm without its affine part, over the same
        # heads × features as ReBased's own LayerNorm, is the reading that differs from ReBased only by γ and β.
        return LayerNorm(dim, elementwise_affine=False, impl=impl)
    if name == "gamma":  # (γ·x)²
        return FeatureScale(dim, bias=False)
    if name == "affine":  # (γ·x + β)²
        return FeatureScale(dim, bias=True)
    raise ValueError(f"unknown q/k transform {name!r}; expected one of {QK_TRANSFORMS}")


class LinearAttention(nn.Module):
    """Based / ReBased linear attention: q, k projected to `num_heads` × `feature_dim` (no bias), v to
    `num_heads` × (d_model // num_heads) and back (no bias); similarity from `mqar.kernels.linear_attention`.

    Separate transforms (own γ, β) for q and for k, as in the paper.
    """

    # The public ReBased code names this projection `proj_o`, which its init's name match ("out_proj") misses:
    # it keeps std 0.02. We keep that, so our models start where the paper's did.
    rescaled_out_proj = False
    input_only_feeds_matmuls = True  # x goes only into the q, k, v projections (see Block)

    def __init__(
        self,
        d_model: int,
        kernel: str,
        qk_transform: str = "identity",
        num_heads: int = 12,
        feature_dim: int = 16,
        eps: float = 1e-6,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        if d_model < num_heads:
            raise ValueError(f"d_model {d_model} is smaller than the {num_heads} heads")
        self.kernel = kernel
        self.num_heads = num_heads
        self.feature_dim = feature_dim
        self.value_dim = d_model // num_heads
        self.eps = eps
        self.impl = impl
        self.q_proj = nn.Linear(d_model, num_heads * feature_dim, bias=False)
        self.k_proj = nn.Linear(d_model, num_heads * feature_dim, bias=False)
        self.v_proj = nn.Linear(d_model, num_heads * self.value_dim, bias=False)
        self.o_proj = nn.Linear(num_heads * self.value_dim, d_model, bias=False)
        self.q_transform = make_qk_transform(qk_transform, num_heads * feature_dim, impl)
        self.k_transform = make_qk_transform(qk_transform, num_heads * feature_dim, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = x.shape
        q = self.q_transform(self.q_proj(x)).view(batch, seq_len, self.num_heads, self.feature_dim)
        k = self.k_transform(self.k_proj(x)).view(batch, seq_len, self.num_heads, self.feature_dim)
        v = self.v_proj(x).view(batch, seq_len, self.num_heads, self.value_dim)  # [batch, seq, heads, value_dim]
        # Under autocast the projections come out in bf16 but torch's LayerNorm in fp32 (mqar's on CUDA: bf16 already):
        # give the kernel one dtype. (It accumulates the normaliser in fp32 whatever the input dtype.)
        q, k = q.to(v.dtype), k.to(v.dtype)
        out = linear_attention(q, k, v, kernel=self.kernel, eps=self.eps, impl=self.impl)
        return self.o_proj(out.reshape(batch, seq_len, self.num_heads * self.value_dim))
