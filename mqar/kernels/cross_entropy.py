"""Cross-entropy over a large vocabulary with accuracy and gradient in one pass (Triton), beside the torch path.

Why: the LM head of an MQAR step makes logits [num_labelled, vocab], 65,536 × 8,192 at batch 512 and seq_len 512.
The torch path (cast to fp32, log_softmax, nll, argmax; in the backward log_softmax's gradient and a cast back)
passes about ten times over that 2 GB tensor: 4 ms of a 26 ms bf16 step on an H200 (results/bench/train-profile.txt).
The forward kernel reads each row once for its log-sum-exp, loss and whether its argmax is the target; the backward
kernel reads it again and writes (softmax − onehot) times the incoming gradient: three passes in all.

`cross_entropy_sum(logits, targets, impl)` -> (loss summed over rows (fp32, differentiable), number of rows whose
argmax is the target). impl "auto" takes Triton on CUDA tensors and torch elsewhere; both compute in fp32
whatever the logits' dtype, and ties in the argmax go to the lowest index, as torch's argmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mqar.errors import UserError

IMPLS = ("auto", "triton", "torch")


def _cross_entropy_sum_torch(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = logits.float()
    return F.cross_entropy(logits, targets, reduction="sum"), (logits.argmax(dim=-1) == targets).sum()


def cross_entropy_sum(
    logits: torch.Tensor, targets: torch.Tensor, impl: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits [rows, vocab] against targets [rows] (all valid), and how many rows are right."""
    if impl not in IMPLS:
        raise UserError(f"unknown impl {impl!r}; choose one of {', '.join(IMPLS)}")
    if impl == "auto":
        impl = "triton" if logits.is_cuda else "torch"
    if impl == "torch":
        return _cross_entropy_sum_torch(logits, targets)
    try:
        from mqar.kernels.triton_cross_entropy import cross_entropy_triton
    except ImportError as error:
        raise UserError(f"Triton kernels are unavailable ({error}); use impl='torch'") from error
    return cross_entropy_triton(logits, targets)
