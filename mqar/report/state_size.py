"""Recurrent state size: how many numbers a model must keep per sequence to predict the next token.

This is the x-axis the Based and Zoology papers use to compare recall across architectures: recall is bounded by
the memory a model can carry, and attention's memory grows with the sequence while a linear model's does not.
Counted per sequence, summed over layers, in scalars (multiply by bytes per scalar for memory).

Formulas, with H = 12 heads, F = 16 feature dim per head, Dv = d_model // 12 (the reference shapes), T = seq_len:
- short gated convolution block (kernel 3): the last 2 inputs, 2 * d_model.
- based (1 + s + s^2/2, Taylor feature map of size 1 + F + F^2 = 273): the key-value state H * 273 * Dv plus the
  normaliser state H * 273 (the running sum of feature-mapped keys), plus the conv block.
- rebased and its ablations (rebased-x2, -norm, -gamma, -affine; feature map x -> x (x) x, size F^2 = 256):
  H * 256 * Dv + H * 256, plus the conv block.
- attention (2 attention layers): the KV cache, 2 * T * d_model per layer, so 4 * T * d_model.
- conv-attention (conv block, then 1 attention layer): 2 * T * d_model + 2 * d_model.
- mamba (2 Mamba blocks, d_inner = 2 * d_model, d_state 16, causal conv width 4, no short-conv layer): per layer
  the SSM state d_inner * 16 plus the conv's last 3 inputs d_inner * 3 = 38 * d_model, so 76 * d_model.
- rwkv (2 RWKV-4 time-mixing layers): per layer and channel the WKV numerator, denominator and running max
  exponent, plus the previous input for the token shift: 4 * d_model per layer, 8 * d_model.
- rwkv-zoology (Zoology's: 4 of the same layers, other init curves): 16 * d_model.
The Based paper counts the symmetric part of x (x) x only (F(F+1)/2); we count what the kernels actually store.
Archs not listed have no formula here: they are left out of a state-size plot, with a note. That includes the
long-convolution models (hyena, h3 with d_state = seq_len, base-conv): run as recurrences, their "state" is the
input history, seq_len x channels per layer, a different kind of number than a fixed-size state.
"""

from __future__ import annotations

from typing import Callable, Optional

HEADS = 12
FEATURE_DIM = 16
CONV_STATE_PER_DIM = 2  # kernel 3: the two previous inputs
BASED_FEATURES = 1 + FEATURE_DIM + FEATURE_DIM**2  # 273
REBASED_FEATURES = FEATURE_DIM**2  # 256
MAMBA_STATE, MAMBA_CONV = 16, 4  # d_state, causal conv width
RWKV_STATE_PER_DIM = 4  # WKV numerator, denominator, running max exponent; the previous input (token shift)


def _linear_attention(features: int) -> Callable[[int, int], int]:
    def size(d_model: int, seq_len: int) -> int:
        value_dim = d_model // HEADS
        kv_state = HEADS * features * value_dim  # [heads, features, value_dim]
        normaliser = HEADS * features  # [heads, features]
        return kv_state + normaliser + CONV_STATE_PER_DIM * d_model

    return size


STATE_SIZE_FORMULAS: dict[str, Callable[[int, int], int]] = {
    "based": _linear_attention(BASED_FEATURES),
    "rebased": _linear_attention(REBASED_FEATURES),
    "rebased-x2": _linear_attention(REBASED_FEATURES),
    "rebased-norm": _linear_attention(REBASED_FEATURES),
    "rebased-gamma": _linear_attention(REBASED_FEATURES),
    "rebased-affine": _linear_attention(REBASED_FEATURES),
    "mamba": lambda d_model, seq_len: 2 * (2 * d_model) * (MAMBA_STATE + MAMBA_CONV - 1),
    "rwkv": lambda d_model, seq_len: 2 * RWKV_STATE_PER_DIM * d_model,
    "rwkv-zoology": lambda d_model, seq_len: 4 * RWKV_STATE_PER_DIM * d_model,
    "attention": lambda d_model, seq_len: 2 * (2 * seq_len * d_model),
    "conv-attention": lambda d_model, seq_len: 2 * seq_len * d_model + CONV_STATE_PER_DIM * d_model,
}


def state_size(arch: str, d_model: int, seq_len: int) -> Optional[int]:
    """Scalars of recurrent state per sequence for `arch`, or None when there is no formula for it."""
    formula = STATE_SIZE_FORMULAS.get(arch)
    return None if formula is None else int(formula(int(d_model), int(seq_len)))
