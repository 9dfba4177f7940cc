"""The models' LayerNorm: nn.LayerNorm (same parameters, init and state_dict keys) with mqar's Triton kernel on CUDA.

impl "auto" (the default) runs `mqar.kernels.layer_norm` on CUDA tensors and torch's own `nn.LayerNorm.forward`
everywhere else, so CPU results are bitwise those of nn.LayerNorm; "torch" always runs nn.LayerNorm's forward;
"triton" always runs the kernel (on CPU only under the Triton interpreter, for tests).

Autocast: torch runs LayerNorm as an fp32 op under autocast (input cast up, fp32 output, which the next matmul
casts back down). The kernel path instead takes x in whatever dtype it comes (the fp32 residual stream or a bf16
activation), computes in fp32, and returns the autocast dtype when autocast is on for x's device, else x.dtype:
the next matmul gets bf16 without a separate cast. The one difference in values: where the output feeds an
addition rather than a matmul, the kernel path rounds it to bf16 first where torch's added it in fp32: the block's
second norm (in front of the identity MLP slot) is added to the fp32 residual, and the short convolution adds its
normalised input as a skip term. Whether that changes what bf16 runs learn is for the equal-accuracy runs to show.
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
        self, dim: int, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True, impl: str = "auto"
    ) -> None:
        if impl not in IMPLS:
            raise UserError(f"unknown LayerNorm impl {impl!r}; choose one of {', '.join(IMPLS)}")
        super().__init__(dim, eps=eps, elementwise_affine=elementwise_affine, bias=bias)
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "torch" or (self.impl == "auto" and not x.is_cuda):
            return super().forward(x)
        return layer_norm(x, self.weight, self.bias, self.eps, impl=self.impl, out_dtype=autocast_dtype(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"
