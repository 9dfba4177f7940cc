"""Causal linear attention with Based / ReBased similarities: one public function, implementations side by side.

`linear_attention(q, k, v, kernel=...)` dispatches to the plain-torch reference (`mqar.kernels.reference`, the
specification) or to the Triton kernels (`mqar.kernels.triton_ops`, the speed). Layout [batch, seq, heads, dim].
"""

from __future__ import annotations

import math
import numbers

import torch

from mqar.errors import UserError
from mqar.kernels.reference import (
    KERNELS,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_quadratic,
)

IMPLS = ("auto", "triton", "torch")
ALGORITHMS = ("auto", "parallel", "chunked")

# impl="torch", algorithm="auto": the quadratic form up to this length, the chunked form beyond. The quadratic
# form holds B·H·T² similarities, the chunked one B·H·T·F' expanded features (F' = 273 at F = 16), so up to a
# few hundred tokens the quadratic form is both smaller and faster; past ~1k tokens its T² memory dominates.
PARALLEL_MAX_SEQ_LEN = 1024

# The widest heads the Triton kernels take: q, k up to TRITON_MAX_FEATURE_DIM features, v up to TRITON_MAX_VALUE_DIM
# columns, the largest shape the GPU suite checks (tests/test_kernels_gpu.py: F 64, D 128). Past it the tiles can
# outgrow shared memory: on an H200, fp32 v wider than 128 (padded to 256) needs 272 KB in the parallel form, of
# 227 KB, and F 128 with D 128 needs 256 KB: Triton's OutOfResources. (bf16 up to F 128, D 256, and the chunked form
# ran there in one check, but no test covers them.)
# impl="auto" takes the torch path for wider heads; impl="triton" refuses them (check_triton_dims).
TRITON_MAX_FEATURE_DIM = 64
TRITON_MAX_VALUE_DIM = 128

__all__ = [
    "ALGORITHMS",
    "IMPLS",
    "KERNELS",
    "TRITON_MAX_FEATURE_DIM",
    "TRITON_MAX_VALUE_DIM",
    "check_inputs",
    "check_triton_dims",
    "linear_attention",
    "linear_attention_chunked",
    "linear_attention_naive",
    "linear_attention_quadratic",
    "triton_takes",
]


def check_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str, algorithm: str, eps: float = 0.0
) -> None:
    """The arguments every implementation takes, checked once: kernel, algorithm, eps and q, k, v's shapes, dtype
    (one floating dtype for all three) and device."""
    if kernel not in KERNELS:
        raise UserError(f"unknown linear attention kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if algorithm not in ALGORITHMS:
        raise UserError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    # a negative eps can cancel the normaliser Σ A ≥ 0 (rebased: outputs of the wrong sign, or inf); NaN poisons all
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (0 <= eps < math.inf):
        raise UserError(f"eps must be a finite number ≥ 0, got {eps!r}")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise UserError(
            "q, k, v must be 4-d [batch, seq, heads, dim], got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    bad_dtypes = [f"{name} {t.dtype}" for name, t in (("q", q), ("k", k), ("v", v)) if not t.is_floating_point()]
    if bad_dtypes:  # computed in fp32 and cast back, an integer output would be the truncated result
        raise UserError(f"q, k, v must be real floating-point tensors, got {', '.join(bad_dtypes)}")
    if len({q.dtype, k.dtype, v.dtype}) > 1:  # else the output's dtype depended on the impl (v's, or q's)
        raise UserError(
            f"q, k, v must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}; cast them to one dtype first"
        )
    if len({q.device, k.device, v.device}) > 1:  # else torch's or Triton's own error ("cpu tensor?")
        raise UserError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if q.shape != k.shape:
        raise UserError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[-1] == 0:  # s = q·k / √F
        raise UserError(f"q and k need a feature dim ≥ 1, got shape {tuple(q.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise UserError(
            f"v must match q in batch, seq and heads, got v {tuple(v.shape)} and q {tuple(q.shape)}"
        )


def triton_takes(q: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether the Triton kernels take heads of q's and v's widths (TRITON_MAX_FEATURE_DIM, TRITON_MAX_VALUE_DIM)."""
    return q.shape[-1] <= TRITON_MAX_FEATURE_DIM and v.shape[-1] <= TRITON_MAX_VALUE_DIM


def check_triton_dims(q: torch.Tensor, v: torch.Tensor) -> None:
    """The Triton path's own check, after check_inputs: heads no wider than the kernels take (triton_takes)."""
    if not triton_takes(q, v):
        raise UserError(
            f"the Triton kernels take q, k up to {TRITON_MAX_FEATURE_DIM} and v up to {TRITON_MAX_VALUE_DIM} wide "
            f"per head, got {q.shape[-1]} and {v.shape[-1]}; use impl='torch' (impl='auto' does for such heads) "
            "or split the heads into narrower ones"
        )


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel: str = "based",
    eps: float = 1e-6,
    impl: str = "auto",
    algorithm: str = "auto",
) -> torch.Tensor:
    """Causal linear attention. q, k: [batch, seq, heads, F]; v: [batch, seq, heads, D] -> [batch, seq, heads, D],
    q, k, v of one floating dtype, the output's.

    o_i = Σ_{j≤i} A_ij v_j / (Σ_{j≤i} A_ij + eps), s = q·k/√F, A = 1 + s + s²/2 ("based") or s² ("rebased").

    impl: "torch" (the reference), "triton" (the fast kernels: q, k up to TRITON_MAX_FEATURE_DIM = 64 and v up to
    TRITON_MAX_VALUE_DIM = 128 wide, wider heads are a UserError), "auto" (Triton on CUDA tensors whose heads it
    takes; torch elsewhere, wider heads on CUDA included: slower, and its memory grows as T² up to
    PARALLEL_MAX_SEQ_LEN tokens, as T·F² beyond).
    algorithm: "parallel" (quadratic in T), "chunked" (linear in T), "auto" (for torch: parallel up to
    PARALLEL_MAX_SEQ_LEN tokens, chunked beyond; for Triton: the Triton module's own choice).
    """
    if impl not in IMPLS:
        raise UserError(f"unknown impl {impl!r}; choose one of {', '.join(IMPLS)}")
    check_inputs(q, k, v, kernel, algorithm, eps)
    if impl == "auto":
        impl = "triton" if q.is_cuda and triton_takes(q, v) else "torch"
    if impl == "triton":
        check_triton_dims(q, v)
        try:
            from mqar.kernels.triton_compat import check_triton_device
            from mqar.kernels.triton_ops import linear_attention_triton_unchecked
        except ImportError as error:
            raise UserError(
                f"Triton kernels are unavailable ({error}); use impl='torch' for the plain-torch reference"
            ) from error
        check_triton_device(q, "q")
        return linear_attention_triton_unchecked(q, k, v, kernel, eps, algorithm)  # its checks are the ones above
    if algorithm == "auto":
        algorithm = "parallel" if q.shape[1] <= PARALLEL_MAX_SEQ_LEN else "chunked"
    if algorithm == "parallel":
        return linear_attention_quadratic(q, k, v, kernel, eps)
    return linear_attention_chunked(q, k, v, kernel, eps)
