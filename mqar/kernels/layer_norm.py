"""LayerNorm over the last dimension: a Triton kernel (forward and backward) beside the torch path.

Why: the models' LayerNorms are narrow (d_model 16..512 wide; ReBased's q/k transform 192), where torch's kernels
are slow, and under bf16 autocast torch runs LayerNorm in fp32 with casts around it: LayerNorm forward + backward
and autocast's casts take about half of a bf16 ReBased step (d_model 128, seq_len 512) on an H200
(results/bench/train-profile.txt). The kernel normalises many rows per program, computes in fp32 whatever the
input dtype, and writes its output directly in the dtype the next op wants (`out_dtype`), so no cast is needed.

`layer_norm(x, weight, bias, eps, impl, out_dtype)` -> x normalised over its last dimension, times weight plus bias
(either may be None), in out_dtype (default x.dtype). impl "auto" takes Triton on CUDA tensors (rows up to
MAX_COLUMNS wide) and torch elsewhere; both compute the statistics and the affine map in fp32.
`mqar.models.norm.LayerNorm` is the nn.LayerNorm the models use on top of it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from mqar.errors import UserError

IMPLS = ("auto", "triton", "torch")
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_COLUMNS = 8192  # the Triton kernel keeps whole rows in one tile (mqar.kernels.triton_layer_norm.MAX_COLUMNS)


def _check(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor], out_dtype) -> None:
    if x.dim() == 0:
        raise UserError("layer_norm needs at least one dimension to normalise over, got a scalar")
    for name, dtype in (("x", x.dtype), ("out_dtype", out_dtype)):
        if dtype not in DTYPES:
            raise UserError(f"layer_norm {name} must be float32, bfloat16 or float16, got {dtype}")
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and tuple(parameter.shape) != (x.shape[-1],):
            raise UserError(f"layer_norm {name} must have shape ({x.shape[-1]},), got {tuple(parameter.shape)}")
        if parameter is not None and parameter.device != x.device:  # else torch's or Triton's own error
            raise UserError(f"layer_norm {name} must be on x's device {x.device}, got {parameter.device}")


def _layer_norm_torch(x, weight, bias, eps: float, out_dtype: torch.dtype) -> torch.Tensor:
    as_fp32 = lambda t: None if t is None else t.float()  # noqa: E731  (no-ops on fp32 tensors)
    return F.layer_norm(x.float(), (x.shape[-1],), as_fp32(weight), as_fp32(bias), eps).to(out_dtype)


def layer_norm(
    x: torch.Tensor,
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    eps: float = 1e-5,
    impl: str = "auto",
    out_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """(x − mean) / sqrt(var + eps) · weight + bias over x's last dimension, computed in fp32, in out_dtype."""
    if impl not in IMPLS:
        raise UserError(f"unknown impl {impl!r}; choose one of {', '.join(IMPLS)}")
    out_dtype = x.dtype if out_dtype is None else out_dtype
    _check(x, weight, bias, out_dtype)
    if impl == "auto":
        impl = "triton" if x.is_cuda and x.shape[-1] <= MAX_COLUMNS else "torch"
    if impl == "torch":
        return _layer_norm_torch(x, weight, bias, eps, out_dtype)
    if x.shape[-1] > MAX_COLUMNS:
        raise UserError(
            f"the Triton LayerNorm takes rows up to {MAX_COLUMNS} wide, got {x.shape[-1]}; use impl='torch'"
        )
    try:
        from mqar.kernels.triton_layer_norm import layer_norm_triton
    except ImportError as error:
        raise UserError(f"Triton kernels are unavailable ({error}); use impl='torch'") from error
    return layer_norm_triton(x, weight, bias, eps, out_dtype)
