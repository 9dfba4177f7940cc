"""The models' LayerNorm: nn.LayerNorm (same parameters, init and state_dict keys) with mqar's Triton kernel on CUDA.

impl "auto" (the default) runs `mqar.kernels.layer_norm` on CUDA tensors and torch's own `nn.LayerNorm.forward`
everywhere else, so CPU results are bitwise those of nn.LayerNorm; "torch" always runs nn.LayerNorm's forward;
"triton" always runs the kernel (on CPU only under the Triton interpreter, for tests).

Autocast: torch runs LayerNorm as an fp32 op under autocast (input cast up, fp32 output, which the next matmul
casts back down). The kernel path computes in fp32 whatever x's dtype and returns x's dtype (the fp32 residual
stream's norms give fp32, as torch's do), except where the module is built with `autocast_output=True`: then,
under autocast, it returns the autocast dtype, so the matmuls it feeds get bf16 without a separate cast. Only a
norm whose output feeds nothing but matmuls may be built so (the LM's final norm, in front of the head; a block's
first norm in front of a mixer that only projects its input, `Block`). Where the output feeds an addition (a
block's second norm, added to the residual; the short convolution's skip term), it keeps x's dtype, as torch's
does. Rounding those outputs to bf16 (mqar's rule before 2026-11-30) cost no speed to undo (compiled bf16 rebased
d_model 128, L 512: 24.47 M tokens/s before, 24.38 after, H200) and seemed to cost accuracy: on the Table-1 task
(d_model 48, 6 seeds each of Based and ReBased), compiled bf16 runs reached 0.99 in 7 of 12 runs before and in 10
of 12 after, as many as fp32 (results/train-equivalence/v2/).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from mqar.errors import UserError
from mqar.kernels.layer_norm import IMPLS, layer_norm


def autocast_dtype(x: torch.Tensor) -> Optional[torch.dtype]:
    """The dtype autocast gives matmuls on x's device, or None where autocast is off."""
    device_type = x.device.type
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the last dimension whose forward, on CUDA, is mqar's Triton kernel (see the module doc)."""

    def __init__(
        self,
        dim: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        impl: str = "auto",
        autocast_output: bool = False,
    ) -> None:
        if impl not in IMPLS:
            raise UserError(f"unknown LayerNorm impl {impl!r}; choose one of {', '.join(IMPLS)}")
        super().__init__(dim, eps=eps, elementwise_affine=elementwise_affine, bias=bias)
        self.impl = impl
        self.autocast_output = autocast_output  # kernel path: the autocast dtype out (only for outputs fed to matmuls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "torch" or (self.impl == "auto" and not x.is_cuda):
            return super().forward(x)
        out_dtype = autocast_dtype(x) if self.autocast_output else None
        return layer_norm(x, self.weight, self.bias, self.eps, impl=self.impl, out_dtype=out_dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}, autocast_output={self.autocast_output}"
