"""The Triton cross-entropy behind `mqar.kernels.cross_entropy.cross_entropy_sum(impl="triton")`.

Forward: one program per row of logits [rows, vocab] reads the row once for its log-sum-exp (online softmax), loss
= logsumexp(x) − x[target] and whether argmax(x) == target; it keeps only the row's log-sum-exp. Backward: one
program per row re-reads the logits and writes (softmax(x) − onehot) · dloss, the incoming gradient folded in.
That is three passes over the [rows, vocab] tensor per step (read; read, write). The earlier version wrote the
gradient in the forward and scaled it in the backward with torch's broadcast multiply: four passes, the multiply at
a third of the memory bandwidth. H200, bf16 65,536 × 8,192 logits, fwd+bwd 2.29 ms then, 1.16 ms now
(results/bench/train-compile/2026-11-30/ce-old-vs-new.txt). Imported lazily by the dispatcher, as the
linear-attention kernels are.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mqar.kernels.triton_compat import check_triton_device, first_order_only, on_device_of, patch_interpreter_index

patch_interpreter_index()


@triton.jit
def _cross_entropy_forward_kernel(
    logits_ptr, targets_ptr, log_sum_exp_ptr, loss_ptr, correct_ptr, stride_row, vocab, BLOCK: tl.constexpr
):
    """One program per row: log-sum-exp, loss = logsumexp(x) − x[target], correct = argmax(x) == target."""
    row = tl.program_id(0).to(tl.int64)
    row_logits = logits_ptr + row * stride_row
    target = tl.load(targets_ptr + row).to(tl.int64)
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
    tl.store(log_sum_exp_ptr + row, log_sum_exp)
    tl.store(loss_ptr + row, log_sum_exp - target_logit)
    tl.store(correct_ptr + row, (best_index == target).to(tl.int32))


@triton.jit
def _cross_entropy_backward_kernel(
    logits_ptr, targets_ptr, log_sum_exp_ptr, grad_loss_ptr, grad_ptr, stride_row, vocab, BLOCK: tl.constexpr
):
    """One program per row: grad = (softmax(x) − onehot(target)) · dloss, dloss the summed loss's gradient."""
    row = tl.program_id(0).to(tl.int64)
    row_logits = logits_ptr + row * stride_row
    row_grad = grad_ptr + row * stride_row
    target = tl.load(targets_ptr + row).to(tl.int64)
    log_sum_exp = tl.load(log_sum_exp_ptr + row)
    grad_loss = tl.load(grad_loss_ptr).to(tl.float32)
    for start in range(0, vocab, BLOCK):
        columns = start + tl.arange(0, BLOCK)
        in_row = columns < vocab
        x = tl.load(row_logits + columns, mask=in_row, other=0.0).to(tl.float32)
        probability = tl.exp(x - log_sum_exp)
        gradient = tl.where(columns == target, probability - 1.0, probability) * grad_loss
        tl.store(row_grad + columns, gradient.to(grad_ptr.dtype.element_ty), mask=in_row)


# (BLOCK, warps) per kernel. H200, 65,536 × 8,192 bf16 logits, forward kernel ms by (BLOCK, warps): (2048, 8)
# 0.62, (4096, 4) 0.42, (8192, 8) 0.50, (1024, 4) 0.56; the bound is 0.27 (memory). The backward, which reads and
# writes, already runs at ~4 TB/s with (2048, 8): 0.50 ms. results/bench/train-compile/2026-11-30/tune-layer-norm-ce.txt
FORWARD_LAUNCH = (4096, 4)
BACKWARD_LAUNCH = (2048, 8)


def _block(vocab: int, block: int) -> int:
    return min(block, triton.next_power_of_2(vocab))


class _CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor):
        logits, targets = logits.contiguous(), targets.contiguous()
        rows, vocab = logits.shape
        log_sum_exp = torch.empty(rows, device=logits.device, dtype=torch.float32)
        losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
        correct = torch.empty(rows, device=logits.device, dtype=torch.int32)
        if rows:
            _cross_entropy_forward_kernel[(rows,)](
                logits, targets, log_sum_exp, losses, correct, logits.stride(0), vocab,
                BLOCK=_block(vocab, FORWARD_LAUNCH[0]), num_warps=FORWARD_LAUNCH[1],
            )
        ctx.save_for_backward(logits, targets, log_sum_exp)
        ctx.mark_non_differentiable(correct)
        return losses.sum(), correct.sum()

    @staticmethod
    @first_order_only("the Triton cross-entropy")  # the kernel's gradient has no graph: say so, not drop terms
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss: torch.Tensor, _grad_correct):
        logits, targets, log_sum_exp = ctx.saved_tensors
        rows, vocab = logits.shape
        grad = torch.empty_like(logits)  # in the logits' dtype: what the LM head's matmul backward takes
        if rows:
            _cross_entropy_backward_kernel[(rows,)](
                logits, targets, log_sum_exp, grad_loss.float().contiguous(), grad, logits.stride(0), vocab,
                BLOCK=_block(vocab, BACKWARD_LAUNCH[0]), num_warps=BACKWARD_LAUNCH[1],
            )
        return grad, None


@torch.compiler.disable  # opaque to torch.compile, as linear_attention_triton (see there)
def cross_entropy_triton(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of logits [rows, vocab] against targets [rows], and how many rows are right."""
    check_triton_device(logits, "logits")
    with on_device_of(logits):
        return _CrossEntropyFunction.apply(logits, targets)
