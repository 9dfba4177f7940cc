"""The Triton LayerNorm behind `mqar.kernels.layer_norm.layer_norm(impl="triton")`: forward and backward.

Rows here are narrow (16 to 512 columns; ReBased's q/k transform has 192), so one program normalises a tile of
BLOCK_M rows × BLOCK_N columns (BLOCK_N = the row width rounded up to a power of two, masked) rather than one row.
Statistics and all arithmetic are fp32 whatever the input dtype; the output is stored in the dtype asked for, so a
bf16 matmul after it needs no separate cast. The forward keeps each row's mean and 1/std (fp32) for the backward.

The backward runs a fixed number of programs, each looping over row tiles with a stride: it writes dx and adds
its rows' dy·x̂ and dy into fp32 accumulators, stored as one partial row per program; torch sums those partials.
No atomics, so for a given input shape and device the gradients are bitwise reproducible (the number of programs
depends on the device's SM count, so another GPU model may round the weight gradients differently).
Imported lazily by the dispatcher, as the linear-attention kernels are.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mqar.kernels.layer_norm import MAX_COLUMNS  # noqa: F401  (one tile holds whole rows: the widest one)
from mqar.kernels.triton_compat import check_triton_device, first_order_only, on_device_of, patch_interpreter_index

patch_interpreter_index()

# Rows per tile = tile elements // BLOCK_N. H200, 262,144 rows (the compiled rebased d128 L512 step's), kernel
# time by CUDA-graph replay, backward at 4096 / 8192 elements (4 warps, 8 programs per SM): 128 fp32 columns
# 0.156 / 0.138 ms, 192 bf16 columns 0.401 / 0.246 ms (16384: 0.243 / 0.229); the forward is best at 4096
# (192 columns 0.060 vs 0.077 ms). results/bench/train-compile/2026-11-30/tune-layer-norm-ce.txt
FORWARD_TILE_ELEMENTS = 4096  # 32 rows of 128 columns, 1 row of 4096+
BACKWARD_TILE_ELEMENTS = 8192  # 64 rows of 128 columns
BACKWARD_PROGRAMS_PER_SM = 8  # enough resident programs to keep memory busy; few partial rows to sum
INTERPRETER_BACKWARD_PROGRAMS = 3  # on CPU: small, so the tests run several row tiles through one program


@triton.jit
def _forward_kernel(
    x_ptr, y_ptr, weight_ptr, bias_ptr, mean_ptr, rstd_ptr, rows, columns, stride_x, stride_y, eps,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """y = (x − mean) / sqrt(var + eps) · weight + bias over BLOCK_M rows; mean and 1/std saved per row."""
    row = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M).to(tl.int64)
    column = tl.arange(0, BLOCK_N)
    row_in, column_in = row < rows, column < columns
    mask = row_in[:, None] & column_in[None, :]
    x = tl.load(x_ptr + row[:, None] * stride_x + column[None, :], mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=1) / columns
    centred = tl.where(mask, x - mean[:, None], 0.0)  # padding must not count in the variance
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / columns + eps)  # biased variance, as torch
    y = centred * rstd[:, None]
    if HAS_WEIGHT:
        y = y * tl.load(weight_ptr + column, mask=column_in, other=0.0).to(tl.float32)[None, :]
    if HAS_BIAS:
        y = y + tl.load(bias_ptr + column, mask=column_in, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + row[:, None] * stride_y + column[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(mean_ptr + row, mean, mask=row_in)
    tl.store(rstd_ptr + row, rstd, mask=row_in)


@triton.jit
def _backward_kernel(
    x_ptr, dy_ptr, dx_ptr, weight_ptr, mean_ptr, rstd_ptr, dweight_partial_ptr, dbias_partial_ptr,
    rows, columns, stride_x, stride_dy, stride_dx, num_programs,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """dx = rstd · (w·dy − mean(w·dy) − x̂ · mean(w·dy·x̂)) per row; Σ dy·x̂ and Σ dy of this program's rows."""
    program = tl.program_id(0)
    column = tl.arange(0, BLOCK_N)
    column_in = column < columns
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + column, mask=column_in, other=0.0).to(tl.float32)
    else:
        weight = tl.full([BLOCK_N], 1.0, tl.float32)
    dweight = tl.zeros([BLOCK_N], dtype=tl.float32)
    dbias = tl.zeros([BLOCK_N], dtype=tl.float32)
    for tile in range(program, tl.cdiv(rows, BLOCK_M), num_programs):
        row = tl.arange(0, BLOCK_M).to(tl.int64) + tile * BLOCK_M  # int64 offsets below; rows < 2**31
        row_in = row < rows
        mask = row_in[:, None] & column_in[None, :]
        x = tl.load(x_ptr + row[:, None] * stride_x + column[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + row[:, None] * stride_dy + column[None, :], mask=mask, other=0.0).to(tl.float32)
        mean = tl.load(mean_ptr + row, mask=row_in, other=0.0)
        rstd = tl.load(rstd_ptr + row, mask=row_in, other=0.0)
        x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
        weighted_dy = dy * weight[None, :]
        mean_dy = tl.sum(weighted_dy, axis=1) / columns
        mean_dy_x_hat = tl.sum(weighted_dy * x_hat, axis=1) / columns
        dx = (weighted_dy - mean_dy[:, None] - x_hat * mean_dy_x_hat[:, None]) * rstd[:, None]
        dx_offset = row[:, None] * stride_dx + column[None, :]
        tl.store(dx_ptr + dx_offset, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        if HAS_WEIGHT:
            dweight += tl.sum(dy * x_hat, axis=0)
        if HAS_BIAS:
            dbias += tl.sum(dy, axis=0)
    partial = program.to(tl.int64) * columns + column
    if HAS_WEIGHT:
        tl.store(dweight_partial_ptr + partial, dweight, mask=column_in)
    if HAS_BIAS:
        tl.store(dbias_partial_ptr + partial, dbias, mask=column_in)


def _tile(columns: int, tile_elements: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps) for rows of `columns` in tiles of about `tile_elements`."""
    block_n = triton.next_power_of_2(max(columns, 1))
    return max(1, tile_elements // block_n), block_n, 4 if block_n <= 1024 else 8


def _backward_programs(device: torch.device, row_tiles: int) -> int:
    if device.type == "cuda":
        programs = BACKWARD_PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
    else:
        programs = INTERPRETER_BACKWARD_PROGRAMS
    return max(1, min(row_tiles, programs))


def _rows_2d(tensor: torch.Tensor) -> torch.Tensor:
    """[..., columns] as [rows, columns] with unit column stride (a view where possible, else a copy)."""
    tensor = tensor.reshape(tensor.numel() // max(1, tensor.shape[-1]), tensor.shape[-1])  # -1: ambiguous at 0 wide
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


class _LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, out_dtype: torch.dtype):
        x2d = _rows_2d(x)
        rows, columns = x2d.shape
        y = torch.empty((rows, columns), device=x.device, dtype=out_dtype)
        mean = torch.empty(rows, device=x.device, dtype=torch.float32)
        rstd = torch.empty(rows, device=x.device, dtype=torch.float32)
        block_m, block_n, num_warps = _tile(columns, FORWARD_TILE_ELEMENTS)
        if rows and columns:  # nothing to normalise otherwise (and no launch of a 0-wide tile)
            _forward_kernel[(triton.cdiv(rows, block_m),)](
                x2d, y, weight, bias, mean, rstd, rows, columns, x2d.stride(0), y.stride(0), eps,
                HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, BLOCK_M=block_m, BLOCK_N=block_n,
                num_warps=num_warps,
            )
        ctx.save_for_backward(x2d, weight, bias, mean, rstd)
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        return y.view(x.shape)

    @staticmethod
    @first_order_only("the Triton LayerNorm")  # the kernel's gradients have no graph: say so, not drop terms
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x2d, weight, bias, mean, rstd = ctx.saved_tensors
        rows, columns = x2d.shape
        dy2d = _rows_2d(dy)
        dx = torch.empty((rows, columns), device=x2d.device, dtype=ctx.x_dtype)
        block_m, block_n, num_warps = _tile(columns, BACKWARD_TILE_ELEMENTS)
        programs = _backward_programs(x2d.device, triton.cdiv(rows, block_m))
        # one fp32 row of partial sums per program (zeros: with no rows there is no launch and the sum is 0)
        partial = lambda present: torch.zeros((programs, columns), device=x2d.device) if present else None  # noqa: E731
        dweight_partial, dbias_partial = partial(weight is not None), partial(bias is not None)
        if rows and columns:
            _backward_kernel[(programs,)](
                x2d, dy2d, dx, weight, mean, rstd, dweight_partial, dbias_partial,
                rows, columns, x2d.stride(0), dy2d.stride(0), dx.stride(0), programs,
                HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, BLOCK_M=block_m, BLOCK_N=block_n,
                num_warps=num_warps,
            )
        dweight = dweight_partial.sum(0).to(weight.dtype) if weight is not None else None
        dbias = dbias_partial.sum(0).to(bias.dtype) if bias is not None else None
        return dx.view(ctx.x_shape), dweight, dbias, None, None


@torch.compiler.disable  # opaque to torch.compile, as linear_attention_triton (see there)
def layer_norm_triton(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float, out_dtype: torch.dtype
) -> torch.Tensor:
    """LayerNorm of x over its last dimension (≤ MAX_COLUMNS wide), in fp32, output in out_dtype."""
    check_triton_device(x, "x")
    with on_device_of(x):
        return _LayerNormFunction.apply(x, weight, bias, eps, out_dtype)
