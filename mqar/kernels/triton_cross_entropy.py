"""The one-pass Triton cross-entropy behind `mqar.kernels.cross_entropy.cross_entropy_sum(impl="triton")`.

One program per row of logits [rows, vocab]: loss = logsumexp(x) − x[target], correct = argmax(x) == target, and
the gradient softmax(x) − onehot, all from one read of the row (plus a re-read, mostly from L2). The backward only
scales the stored gradient. Imported lazily by the dispatcher, as the linear-attention kernels are.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mqar.kernels.triton_compat import on_device_of, patch_interpreter_index

patch_interpreter_index()


@triton.jit
def _cross_entropy_kernel(
    logits_ptr, targets_ptr, grad_ptr, loss_ptr, correct_ptr, stride_row, vocab, BLOCK: tl.constexpr
):
    """One program per row: loss = logsumexp(x) − x[target], correct = argmax(x) == target, grad = softmax(x) − onehot."""
    row = tl.program_id(0).to(tl.int64)
    row_logits = logits_ptr + row * stride_row
    row_grad = grad_ptr + row * stride_row
    target = tl.load(targets_ptr + row).to(tl.int64)
    # Pass 1: running max and sum of exponentials (online softmax), and the argmax.
    running_max = tl.full([], float("-inf"), tl.float32)
    running_sum = tl.zeros([], tl.float32)
    best_index = tl.zeros([], tl.int64)
    for start in range(0, vocab, BLOCK):
        columns = start + tl.arange(0, BLOCK)
        x = tl.load(row_logits + columns, mask=columns < vocab, other=float("-inf")).to(tl.float32)
        block_max = tl.max(x, axis=0)
        block_index = start + tl.argmax(x, axis=0, tie_break_left=True).to(tl.int64)
        best_index = tl.where(block_max > running_max, block_index, best_index)  # strict: earlier block wins ties
        new_max = tl.maximum(running_max, block_max)
        running_sum = running_sum * tl.exp(running_max - new_max) + tl.sum(tl.exp(x - new_max), axis=0)
        running_max = new_max
    log_sum_exp = running_max + tl.log(running_sum)
    target_logit = tl.load(row_logits + target).to(tl.float32)
    tl.store(loss_ptr + row, log_sum_exp - target_logit)
    tl.store(correct_ptr + row, (best_index == target).to(tl.int32))
    # Pass 2: the gradient of the row's loss with respect to its logits.
    for start in range(0, vocab, BLOCK):
        columns = start + tl.arange(0, BLOCK)
        in_row = columns < vocab
        x = tl.load(row_logits + columns, mask=in_row, other=0.0).to(tl.float32)
        probability = tl.exp(x - log_sum_exp)
        gradient = tl.where(columns == target, probability - 1.0, probability)
        tl.store(row_grad + columns, gradient.to(grad_ptr.dtype.element_ty), mask=in_row)


class _CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor):
        logits = logits.contiguous()
        rows, vocab = logits.shape
        grad = torch.empty_like(logits)  # softmax − onehot, in the logits' dtype (what the matmul backward takes)
        losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
        correct = torch.empty(rows, device=logits.device, dtype=torch.int32)
        if rows:
            block = min(2048, triton.next_power_of_2(vocab))
            _cross_entropy_kernel[(rows,)](
                logits, targets.contiguous(), grad, losses, correct, logits.stride(0), vocab, BLOCK=block, num_warps=8
            )
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(correct)
        return losses, correct

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor, _grad_correct):
        (grad,) = ctx.saved_tensors
        return grad * grad_losses.unsqueeze(1).to(grad.dtype), None


@torch.compiler.disable  # opaque to torch.compile, as linear_attention_triton (see there)
def cross_entropy_triton(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits [rows, vocab] against targets [rows], and how many rows are right."""
    with on_device_of(logits):
        losses, correct = _CrossEntropyFunction.apply(logits, targets)
    return losses.sum(), correct.sum()
