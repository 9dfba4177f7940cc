"""mqar's Triton linear attention: the autograd entry point over the parallel and chunked kernels.

`linear_attention_triton(q, k, v, kernel, eps, algorithm)` computes, causally,
    o_i = Σ_{j≤i} A_ij v_j / (Σ_{j≤i} A_ij + eps),  s = q·k/√F,  A = 1 + s + s²/2 (based) or s² (rebased)
with q, k [batch, seq, heads, F], v [batch, seq, heads, D] -> o [batch, seq, heads, D], all of one dtype. The
normaliser is accumulated and applied in fp32. Two algorithms:
- "parallel" (`triton_parallel`): flash-attention style tiles, O(T²) work, no T×T memory;
- "chunked" (`triton_chunked` + the parallel kernels on the diagonal): O(T) work through the expanded feature
  state (1 + F + F(F+1)/2 features for based, F(F+1)/2 for rebased: s² counts each unordered pair of
  feature indices once), quadratic only within chunks.
The backward recomputes similarity tiles / states; it stores only o and the fp32 denominator [B, H, T].

Under the Triton interpreter (TRITON_INTERPRET=1, set before this module is imported) the kernels run on CPU
tensors, fp32 only; tests use that.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from mqar.kernels import check_inputs, check_triton_dims
from mqar.kernels.triton_compat import (
    INTERPRETER,
    check_triton_device,
    first_order_only,
    on_device_of,
    patch_interpreter_index,
)

patch_interpreter_index()

from mqar.kernels.triton_chunked import chunk_scan_kernel, chunk_state_kernel  # noqa: E402
from mqar.kernels.triton_parallel import (  # noqa: E402
    KERNEL_IDS,
    bwd_prep_kernel,
    key_gram_kernel,
    parallel_bwd_kernel,
    parallel_fwd_kernel,
)

_DOT_DTYPES = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


def choose_algorithm(batch: int, seq: int, heads: int, feature_dim: int, value_dim: int, dtype: torch.dtype) -> str:
    """The faster algorithm for a shape ("parallel" or "chunked"), from forward+backward timings on an H200.

    Measured on the H200 in session 14 (bf16, rebased, F = 16, fwd+bwd ms, do_bench median, each form with its
    own tiles from _config below; results/bench/kernels-grid/s14-2026-11-30/, call 3: crossover.jsonl, and
    kernels.md for the 256×512 / 64×2048 / 8×8192 / 2×32768 rows):
        B, T, H, D          parallel  chunked
        256, 512, 12, 16      0.80     3.19
        64, 2048, 12, 16      2.05     3.16
        22, 3072, 12, 16      1.51     1.61
        32, 3072, 8, 64       2.56     2.50
        16, 4096, 12, 16      1.91     1.64
        32, 4096, 8, 64       4.39     3.35
        8, 8192, 8, 64        4.27     1.75
        2, 32768, 8, 64      16.55     2.45
    At a fixed number of tokens the parallel form grows linearly in T and the chunked one stays flat. At 3k the
    parallel form wins at D = 16 (by 6 %) and loses by 2 % at D = 64; from 4k the chunked one wins at both value
    widths. The crossover stays at 4096: a rule by value width would gain 2 % at one measured shape. (Session 13's
    kernels, 2026-12-01 call 7, had the parallel form ahead at 3k for both widths.) The chunked state has ~F²/2
    features per head, so its cost and the crossover grow with F²; for F < 16 the F = 16 crossover is kept (not
    measured).
    """
    if seq <= 1:
        return "parallel"
    return "chunked" if seq >= _crossover_seq_len(feature_dim) else "parallel"


CROSSOVER_SEQ_LEN_F16 = 4096


def _crossover_seq_len(feature_dim: int) -> int:
    return int(CROSSOVER_SEQ_LEN_F16 * max(1.0, (feature_dim / 16) ** 2))


@dataclass(frozen=True)
class _Config:
    block_m: int  # query rows per program (parallel) = chunk size (chunked)
    block_n: int  # key rows per inner step
    block_e: int  # expanded features per program (chunked)
    num_warps: int
    num_stages: int
    bwd_block: int | None = None  # parallel backward: query rows per step (None: as above) ...
    bwd_block_n: int | None = None  # ... and key rows per program (None: bwd_block); larger = fewer dq atomics
    bwd_warps: int | None = None  # the backward kernel's warps, both forms (None: num_warps)
    # The backward kernel's pipelining depth (None: num_stages) and register cap per thread (Triton's `maxnreg`, the
    # PTX .maxnreg directive; None: ptxas's own choice, up to 255), both forms: tuning hooks for CONFIG_OVERRIDE, no
    # default sets them. Fewer registers let more programs share an SM, at the price of spills where the code needs
    # more (offline sm_90 counts for candidates: results/bench/kernels-grid/s14-2026-11-30/bwd-offline.md). Timed on
    # the H200 (s15-2026-11-30, call 1), caps 128 and 168, depths 1 and 2, bf16 tiles 32×128 at 2 and 4 warps: all
    # slower than the defaults at 64×2048×12 D16 (2.10-2.64 against 2.03 ms fwd+bwd) and the long shapes, within
    # the run-to-run spread at 256×512 and 512×256.
    bwd_stages: int | None = None
    bwd_maxnreg: int | None = None
    # Program order of the parallel kernels. True: one grid axis, a head's blocks consecutive, so the programs in
    # flight share a few heads' rows in L2; False: grid (B·H, blocks), block-major (hundreds of heads in flight, a
    # head's rows evicted before its next block reads them). ncu of the block-major backward at 64×2048×12 bf16: 5.2
    # GB read from DRAM for ~0.3 GB of data, 1.93 ms; head-major: DRAM 6 % busy, 1.79 ms. fwd+bwd ms head- / block-
    # major (results/bench/kernels-grid/2026-11-30/): bf16 64×2048×12 D16 2.97 / 3.07, 256×512×12 D16 1.28 / 1.32;
    # fp32 256×512×12 D16 4.36 / 4.13, so fp32 keeps block-major.
    head_major: bool = True


# The chunked form's forward prefix states (Σ φk vᵀ and Σ φk per chunk boundary, fp32 [B·H, T/C + 1, E, D]) are
# kept for the backward instead of recomputed there: one state pass and its cumsum fewer per step, for memory of
# ~E·D·4/C bytes per token and head (E = F(F+1)/2 padded: at F = 16, D = 64, C = 64 about 640 B, 5× a bf16 v).
# H200, bf16, F = 16, fwd+bwd (without the chunk scan): 2×32768×8 D64 3.79 ms kept vs 4.58 recomputed, peak memory
# 1.64 vs 1.48 GiB; 8×8192×8 D64 3.43 vs 4.07; 64×2048×12 D16 5.35 vs 6.18. False trades that time for the memory.
KEEP_CHUNK_STATES = True

# How the chunked form builds its prefix states: True, one sequential pass over the chunks per (batch·head, feature
# block, SCAN_BLOCK_D value columns) that keeps the running sum in registers (chunk_scan_kernel); False, every
# chunk's own state in parallel (chunk_state_kernel), then a torch cumsum over the chunks, which reads and rewrites
# the whole [B·H, T/C + 1, E, D] buffer once more. H200, bf16, F = 16, fwd+bwd with kept states, scan (value
# columns 32 / 64) vs parallel + cumsum: 2×32768×8 D64 3.92 / 3.73 vs 3.79 ms; 8×8192×8 D64 3.46 / 3.14 vs 3.43;
# 32×4096×8 D64 6.49 / 5.62 vs 6.57; 64×2048×12 D16 4.99 vs 5.35 (16, 32 and 64 alike at D = 16).
# The False path stays as the tests' independent check of the scan.
STATE_SCAN = True
SCAN_BLOCK_D = 64

# How the chunked form's backward kernel (parallel_bwd_kernel with INTER) is laid out:
#   "sum"   one launch; the state loops sum from zero and are added to the diagonal tile's gradients after
#           (INTER_ACC False);
#   "split" two launches over the same chunks, dq then dk and dv, each recomputing the diagonal tile and loading
#           its inputs again; the state loops start from the tile's gradients (INTER_ACC True).
# H200, bf16, F = 16, fwd+bwd ms sum / split, TWO_MMA on (results/bench/kernels-grid/2026-11-30/, two runs):
#   rebased 8×8192×8 D64 2.985 / 3.042   2×32768×8 D64 3.50 / 3.54   32×4096×8 D64 5.48 / 5.60
#           16×8192×8 D16 3.36 / 3.15    64×2048×12 D16 4.84 / 4.53  based 8×8192×8 D64 3.22 / 3.22
# so "split" for values up to 32 wide, "sum" above. (Offline sm_90 compile, D = 64: sum 255 registers and 80 B of
# spilled stack, split 162 / 0 and 180 / 0, results/bench/kernels-tuned/2026-11-30/bwd-split-offline.md. A third
# layout, one launch with INTER_ACC True, removed the spills too but was 4-11 % slower than "sum" at every shape.)
# CHUNKED_BWD forces one layout (tests, benchmarks); None picks by the value width.
CHUNKED_BWD: str | None = None
_CHUNKED_BWD_LAUNCHES = {  # -> the kernel's (INTER_GRADS, INTER_ACC) per launch
    "sum": (("all", False),),
    "split": (("dq", True), ("dkdv", True)),
}


def _chunked_bwd_layout(value_dim: int) -> str:
    return CHUNKED_BWD or ("split" if value_dim <= 32 else "sum")


# The chunked backward's state loops need two products to ≈ fp32 whatever the input dtype: g Sᵀ (inter_dq, g = do/Z)
# and v Rᵀ (inter_dkdv). tf32x3 takes 3 tf32 MMAs each; for half inputs v and do are exact in tf32, so two do:
# v · (R_hi + R_lo) (the same two products tf32x3 makes, same order: same result) and (do · (S_hi + S_lo)) / Z
# (agrees to fp32 rounding). fp32 inputs always keep tf32x3 (their v, do are not exact). H200, bf16, F = 16, "sum"
# fwd+bwd ms tf32x3 / two MMAs: 8×8192×8 D64 3.05 / 2.99, 2×32768×8 D64 3.54 / 3.50, 16×8192×8 D16 3.47 / 3.36
# (results/bench/kernels-grid/2026-11-30/). False (tf32x3 for all inputs) is kept for the tests that compare them.
CHUNKED_BWD_TWO_MMA = True


def _two_mma(dtype: torch.dtype) -> bool:
    """The backward kernel's TWO_MMA: only where the switch is on and the inputs are half precision."""
    return CHUNKED_BWD_TWO_MMA and dtype != torch.float32


def _grid(head_major: bool, batch_heads: int, blocks: int) -> tuple[int, ...]:
    """The parallel kernels' launch grid: see _Config.head_major."""
    return (batch_heads * blocks,) if head_major else (batch_heads, blocks)


# Tuning hook: {"parallel": _Config(...), "chunked": _Config(...)} replaces the defaults below (benchmarks only).
CONFIG_OVERRIDE: dict[str, _Config] = {}

# The parallel rebased forward's row sums Σ_j A_ij over the key blocks wholly before a query block. With the Gram
# (GRAM): Σ_j (q·k_j)² = qᵀGq from the keys' prefix Gram matrices G = Σ_j k_j k_jᵀ (_key_grams: one small program
# per key block, then a cumsum over the blocks), once per row, so those blocks' tiles form only A·v; without: summed
# tile by tile (bf16: two more MMAs per tile, on a tile of ones; dropping them, timing only, cut the 64×2048 forward
# 0.664 → 0.570 ms). The Gram's own cost grows with B·H·T, what it saves with B·H·T². H200, bf16 rebased, F = 16,
# forward ms without / with (results/bench/kernels-grid/s16-2026-11-30/, call 5, three runs each): 64×2048×12 D16
# 0.667 / 0.632 (fwd+bwd 2.03-2.04 / 1.99-2.00); 256×512×12 D16 0.255 / 0.305; 512×256×12 D5 0.247 / 0.313;
# 64×2048×12 D42 1.89 / 2.33; fp32 256×512×12 D16 0.78 / 0.88; 32×4096×8 and 8×8192×8 D64 within the run-to-run
# spread. fwd+bwd (call 6): 128×1024×12 D16 1.21 / 1.23, 48×3072×12 D16 3.21 / 3.11, fp16 64×2048 3.97 / 4.05.
# The build itself (s17-2026-11-30, torch.profiler) is ~40-50 µs at B·T = 131-147k rows × 12 heads: key_gram_kernel
# 24-27, the cumsum 13-22; one pass over k writing every slot is ~26 µs, and five other builds saved at most 4-6 µs.
# So: bf16, F and values up to 16 wide, T ≥ 2048 (auto takes the chunked form from 4096 on) and B·H·T ≥
# FWD_GRAM_MIN_ROWS (below). Based is not offered (it needs Σ k as well; at 256×512 its forward went 0.27 → 0.36).
# Three other ways to form G were slower everywhere (calls 1, 3, 4: in the forward's loop, by a per-head scan, summed
# by the forward block by block). None: that rule; True / False force the Gram on or off for rebased (tests,
# benchmarks).
FWD_GRAM: bool | None = None
# The rule's last condition: enough rows (B·H·T) to pay the build's fixed GPU time, 9-12 µs at small B·H, of which
# torch's cumsum takes 7-11 µs however small G is. H200, forward GPU µs without / with (the forward kernel, or it +
# the cumsum + key_gram_kernel; torch.profiler, s17-2026-11-30/call12): T = 2048, H = 12, B = 2: 34.1 / 40.0,
# B = 4: 53.7 / 57.3, B = 8: 96.0 / 96.8, B = 16: 178 / 171, B = 32: 340 / 321; 1×3072×8: 27.5 / 35.4, 4×3072×12
# (147k rows, below the line): 105.8 / 104.1, 16×3072×12: 368 / 338. In eager use the two launches also cost host
# time (~30 µs), which bounds the wall time at these sizes.
FWD_GRAM_MIN_ROWS = 2**18

# Value widths that are not a multiple of 16 (MQAR's d_model // 12: 5, 10, 21, 42) are padded, by the rule below,
# with zero columns to the next multiple before the kernels run, and the output is cut back. In a [B, T, H, D]
# tensor a head's rows start h·D elements in: at D = 42 in bf16 every 84 bytes, and Triton, which vectorises only the
# copies it can prove 16-byte aligned, then moves v and do element by element in the kernels' inner loops. The zero columns add 0 to every sum
# and their gradient is cut away: the results are the same (call 2: o and dv identical, dq and dk within 4e-5).
# H200, rebased F = 16, fwd+bwd ms unpadded / padded, the copies included (results/bench/kernels-grid/s18-2026-12-01/,
# calls 2 and 3; 64×2048×12 unpadded at D 42 / 48 / 64 in call 1: 5.61 / 3.63 / 3.58):
#   bf16  512×256×12 D5 0.80 / 0.91, D42 1.62 / 1.78   256×512×12 D10 1.08 / 1.02, D42 2.20 / 2.16
#         128×1024×12 D21 2.27 / 2.02, D42 3.35 / 2.90  64×2048×12 D42 5.61 / 4.37   2×32768×8 D42 3.79 / 2.82
#   fp32  512×256×12 D5 2.39 / 2.33, D42 11.06 / 5.87   256×512×12 D21 10.23 / 5.12  128×1024×12 D42 29.2 / 16.0
#   fp16  64×2048×12 D21 6.21 / 5.51, D42 9.30 / 10.04  256×512×12 D42 3.22 / 3.71
# So: fp32 always (even or faster at 256 tokens, about twice as fast from D = 21 up); bf16 from T = 512 (at 256 the two
# copies cost more than the kernels save); fp16 not (it lost at D = 42). `mqar bench train`, fp32 (the default),
# tokens/s unpadded / padded: rebased d_model 512, L 512: 2.16 / 2.47 M; d_model 256: 4.27 / 5.17 M; d_model 512,
# L 256: 2.33 / 2.61 M (call 3). None: that rule; True / False force it on or off (tests, benchmarks).
PAD_VALUES: bool | None = None
PAD_VALUES_BF16_MIN_SEQ = 512


def _padded_value_dim(value_dim: int, seq: int, dtype: torch.dtype) -> int:
    """The width the kernels run v at: value_dim, or the next multiple of 16 where PAD_VALUES' rule asks for it."""
    if PAD_VALUES is False or value_dim % 16 == 0:
        return value_dim
    measured_faster = dtype == torch.float32 or (dtype == torch.bfloat16 and seq >= PAD_VALUES_BF16_MIN_SEQ)
    if PAD_VALUES is None and not measured_faster:
        return value_dim
    return -(-value_dim // 16) * 16


def _config(
    algorithm: str, chunk_size: int | None, dtype: torch.dtype, value_dim: int, feature_dim: int = 16,
    seq_len: int | None = None,
) -> _Config:
    if algorithm in CONFIG_OVERRIDE:
        return CONFIG_OVERRIDE[algorithm]
    if INTERPRETER:  # fewer, larger tiles run faster in numpy; 16 is the smallest tile tl.dot takes
        block = chunk_size or 32
        return _Config(block, block, 128, 4, 1)
    stages = _stages(dtype, value_dim, feature_dim)
    if algorithm == "chunked":
        # Half inputs: 2 warps for all three kernels (the prefix-state scan, the forward and the backward) and
        # feature blocks of 16. H200, bf16 rebased F = 16, fwd+bwd ms (results/bench/kernels-grid/2026-12-01/,
        # calls 3-5): 4 warps (BE 32 at D16) / the scan alone at 2 / all at 2 with BE 16 / all at 2 with BE 32
        #   8×8192×8 D64   2.65 / 2.41 / 2.07 / 2.27      2×32768×8 D64  3.15 / 2.95 / 2.61 / 3.39
        #   32×4096×8 D64  4.86 / 4.51 / 3.83 / 4.23      16×8192×8 D16  2.86 / 2.66 / 2.49 / 2.56
        #   64×2048×12 D16 4.11 / 3.67 / 3.54 / 3.54
        # The scan is a sequential loop over the chunks, latency-bound: at 8×8192 D64 its forward direction took
        # 384 µs at 4 warps, 252 at 2, 339 at 1 (call 4). The backward kernel at 8 warps hit an illegal memory
        # access on the H200 (call 4; not investigated, not used). fp32 was measured neither at 2 warps nor with
        # BE 16: it keeps 4 warps and BE 32.
        block = chunk_size or 64
        if dtype == torch.float32:
            return _Config(block, block, 32, 4, stages)
        return _Config(block, block, 16, 2, stages)
    # Parallel backward, H200, bf16, F = 16, fwd+bwd ms by backward tiles (query rows per step BM, key rows per
    # program BN, warps), results/bench/kernels-state-scan/2026-11-30/tune-parallel.txt:
    #                    BM32 BN64 w2   BM32 BN32 w2   BM64 BN64 w4   best other
    #   256×512×12 D16      1.35           1.62           1.73         1.43 (BM64 BN128 w4)
    #   512×256×12 D5       0.99           1.10           1.26         1.00 (BM16 BN64 w2)
    #   64×2048×12 D16      3.42           4.94           4.40         3.34 (BM64 BN128 w4)
    #   8×8192×8 D64        5.51           6.86           6.19         5.22 (BM32 BN128 w4)
    # Key blocks twice the query step halve the dq atomic adds; small query steps keep many programs in flight.
    # One config within 5 % of the best everywhere. fp32 (tf32x3 dots) is the other way round: 256×512×12 D16
    # fwd+bwd 4.24 ms with 64×64 tiles, 4.91 with 32×32.
    # Under the head-major grid (results/bench/kernels-grid/2026-11-30/, s12c2 / s12c3), key blocks of 128 at the
    # same two warps win where values are ≤ 16 wide and T ≥ 512, and lose elsewhere (fwd+bwd ms, BN 64 / BN 128):
    #   256×512×12 D16 1.28 / 1.18   based 1.39 / 1.36   64×2048×12 D16 2.97 / 2.60
    #   512×256×12 D5 0.89-1.13 / 1.09   64×2048×12 D42 7.54 / 8.25   8×8192×8 D64 5.13 / 5.77
    # Other backward tiles (BM×BN×warps 32×64×4, 16×64×4, 16×128×4, 16×32×2) were slower at every shape.
    # Re-timed after session 13's offline rounds (s14-2026-11-30, call 2), 64×2048×12 D16 fwd+bwd ms, best of
    # two. Backward tiles: 32×128×2 2.03; 64×128×2 2.29, 16×128×2 2.45, 32×256×2 3.37, 16×256×2 2.74, 32×128×1
    # 2.96, 16×64×1 2.26. Forward tiles: 64×64×4 (below) 2.03; 128×64×4 2.05, 64×128×4 2.10, 128×64×8 2.15,
    # 128×128×8 2.32. Stages: 3 (below) 2.03; 2 2.15, 4 2.04.
    if dtype != torch.float32:
        wide_keys = value_dim <= 16 and (seq_len or 0) >= 512
        return _Config(64, 64, 64, 4, stages, bwd_block=32, bwd_block_n=128 if wide_keys else 64, bwd_warps=2)
    return _Config(64, 64, 64, 4, stages, head_major=False)


def _check_chunked_config(cfg: _Config) -> None:
    """The chunked kernels' tiles are the chunks: BM == BN == chunk (a CONFIG_OVERRIDE could break that)."""
    if cfg.block_m != cfg.block_n:
        raise ValueError(f"chunked form: block_n ({cfg.block_n}) must equal block_m, the chunk ({cfg.block_m})")


def _stages(dtype: torch.dtype, value_dim: int, feature_dim: int) -> int:
    """Pipelining depth: 3 where the tiles are small; fewer where 3 would pass the 227 KB of shared memory (fp32
    with D = 128 needed 256 KB at 3 stages on the H200)."""
    row_bytes = (4 if dtype == torch.float32 else 2) * (_pad(value_dim) + _pad(feature_dim))
    if row_bytes <= 192:
        return 3
    return 2 if row_bytes <= 384 else 1


@functools.cache  # ~20 calls per forward + backward, ~2.5 µs each uncached (host time: s17-2026-11-30/host/)
def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _precision(dtype: torch.dtype) -> str:
    """fp32 inputs get tf32x3 (≈fp32 accuracy on tensor cores); half inputs' fp32 operands get tf32."""
    if INTERPRETER:
        return "ieee"
    return "tf32x3" if dtype == torch.float32 else "tf32"


def _precise() -> str:
    """For products that must be ≈ fp32 whatever the input dtype (the cancelling dA = g·v − δ and its kin)."""
    return "ieee" if INTERPRETER else "tf32x3"


def _num_features(kernel: str, feature_dim: int) -> int:
    """Expanded features of the chunked kernels: unordered pairs (+ singles and the constant for based)."""
    return feature_dim * (feature_dim + 1) // 2 + (feature_dim + 1 if kernel == "based" else 0)


def _strides4(t: torch.Tensor) -> tuple[int, int, int, int]:
    """The strides of a [B, T, H, ·] tensor (one call for all four: a launch passes 16-28 of them)."""
    return t.stride()


# The parallel kernels' row offsets within one (batch, head) in int32 where they fit (_rows32); False forces int64
# everywhere (the tests' check of that path: no GPU test reaches 2³¹ within one head).
ROWS32 = True


def _rows32(seq: int, block: int, *tensors: torch.Tensor) -> bool:
    """Whether every [B, T, H, ·] tensor's offsets within one (batch, head), row·stride(1) + column·stride(3), fit
    in int32 for the rows the kernels address (up to seq rounded up to a block, masked rows included) and columns
    up to the padded width. The (batch, head) base stays int64 in the kernels either way."""
    if not ROWS32:
        return False
    rows = triton.cdiv(seq, block) * block
    for t in tensors:
        strides = t.stride()
        if (rows - 1) * strides[1] + (_pad(t.shape[3]) - 1) * strides[3] >= 2**31:
            return False
    return True


def _prefix_states(x, y, reciprocal, delta, kernel: str, cfg: _Config, block_d: int, precision: str, backward: bool):
    """Per-chunk states summed over all earlier chunks (forward) or all later chunks (backward).

    Returns STATE [B·H, NC + 1, E_PAD, D] and VEC [B·H, NC + 1, E_PAD] (fp32) and the number of feature blocks.
    Forward: slot c holds Σ_{chunks < c} φk vᵀ and Σ φk. Backward: slot NC − 1 − c holds Σ_{chunks > c} φq gᵀ and
    Σ δ φq. Built by one sequential pass over the chunks (STATE_SCAN), or by writing each chunk's own sum one slot
    further along and a cumulative sum over the slots.
    """
    batch, seq, heads, feature_dim = x.shape
    value_dim = y.shape[-1]
    num_chunks = triton.cdiv(seq, cfg.block_m)
    num_blocks = triton.cdiv(_num_features(kernel, feature_dim), cfg.block_e)
    e_pad = num_blocks * cfg.block_e
    state = torch.empty(batch * heads, num_chunks + 1, e_pad, value_dim, dtype=torch.float32, device=x.device)
    vec = torch.empty(batch * heads, num_chunks + 1, e_pad, dtype=torch.float32, device=x.device)
    state[:, 0].zero_()
    vec[:, 0].zero_()
    if STATE_SCAN:
        block_ds = min(block_d, SCAN_BLOCK_D)
        chunk_scan_kernel[(batch * heads, num_blocks, triton.cdiv(value_dim, block_ds))](
            x, y, reciprocal, delta, state, vec,
            *_strides4(x), *_strides4(y),
            seq, heads, feature_dim, value_dim, 1.0 / math.sqrt(feature_dim),
            KERNEL=KERNEL_IDS[kernel], C=cfg.block_m, BE=cfg.block_e, BF=_pad(feature_dim), BD=block_ds,
            IS_QUERY=backward, PRECISION=precision, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        return state, vec, num_blocks
    chunk_state_kernel[(batch * heads, num_chunks, num_blocks)](
        x, y, reciprocal, delta, state, vec,
        *_strides4(x), *_strides4(y),
        seq, heads, feature_dim, value_dim, 1.0 / math.sqrt(feature_dim),
        KERNEL=KERNEL_IDS[kernel], C=cfg.block_m, BE=cfg.block_e, BF=_pad(feature_dim), BD=block_d, IS_QUERY=backward,
        PRECISION=precision, num_warps=cfg.num_warps, num_stages=1,
    )
    # [B·H, NC + 1, E_PAD, D]: inclusive sums over slots = exclusive sums over chunks
    return state.cumsum_(dim=1), vec.cumsum_(dim=1), num_blocks


def _forward(q, k, v, kernel: str, eps: float, algorithm: str, chunk_size: int | None):
    """-> out, out32 (fp32 out for half inputs, else out itself), denominator [B, H, T] fp32, and for the chunked
    form its prefix states (state, vec) when KEEP_CHUNK_STATES, else None."""
    batch, seq, heads, feature_dim = q.shape
    value_dim = v.shape[-1]
    cfg = _config(algorithm, chunk_size, q.dtype, value_dim, feature_dim, seq)
    out = torch.empty(batch, seq, heads, value_dim, dtype=q.dtype, device=q.device)
    denominator = torch.empty(batch, heads, seq, dtype=torch.float32, device=q.device)  # Σ A + eps
    block_f, block_d = _pad(feature_dim), _pad(value_dim)
    precision = _precision(q.dtype)
    chunked = algorithm == "chunked"
    if chunked:
        _check_chunked_config(cfg)
        state, vec, num_blocks = _prefix_states(k, v, None, None, kernel, cfg, block_d, precision, backward=False)
    else:
        state, vec, num_blocks = denominator, denominator, 0  # unused (INTER=False, GRAM=False)
    gram = not chunked and _fwd_gram(kernel, q.dtype, feature_dim, value_dim, seq, cfg.block_m, batch * heads)
    if gram:
        state = _key_grams(k, cfg.block_n, block_f)
    save_o32 = q.dtype != torch.float32
    out32 = torch.empty(out.shape, dtype=torch.float32, device=q.device) if save_o32 else out
    parallel_fwd_kernel[_grid(cfg.head_major, batch * heads, triton.cdiv(seq, cfg.block_m))](
        q, k, v, out, denominator, out32, state, vec,
        *_strides4(q), *_strides4(k), *_strides4(v), *_strides4(out),
        seq, heads, feature_dim, value_dim, 1.0 / math.sqrt(feature_dim), eps, num_blocks, 1.0 / math.sqrt(feature_dim),
        KERNEL=KERNEL_IDS[kernel], BM=cfg.block_m, BN=cfg.block_n, BF=block_f, BD=block_d,
        INTER=chunked, BE=cfg.block_e, DOT_DTYPE=_DOT_DTYPES[q.dtype], PRECISION=precision,
        PRECISE=_precise(), SAVE_O32=save_o32, HEAD_MAJOR=cfg.head_major,
        ROWS32=_rows32(seq, max(cfg.block_m, cfg.block_n), q, k, v, out),
        PAD_FD=block_f != feature_dim or block_d != value_dim, GRAM=gram,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    kept_states = (state, vec) if chunked and KEEP_CHUNK_STATES else None
    return out, out32, denominator, kept_states


def _key_grams(k, block_n: int, block_f: int) -> torch.Tensor:
    """The keys' prefix Gram matrices for the parallel rebased forward's GRAM: slot c of a (batch, head) holds Σ k kᵀ
    over key blocks 0..c of block_n rows, [B·H, cdiv(T, block_n), block_f, block_f] fp32. Each block's own matrix
    comes from one program (key_gram_kernel, all in parallel), then a cumulative sum over the blocks."""
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    key_gram_kernel[(batch * heads * blocks,)](
        k, grams, *_strides4(k), seq, heads, feature_dim,
        BN=block_n, BF=block_f, DOT_DTYPE=_DOT_DTYPES[k.dtype], PRECISE=_precise(), num_warps=4 if block_f >= 64 else 1,
    )
    return grams.cumsum_(1)


def _fwd_gram(kernel: str, dtype: torch.dtype, feature_dim: int, value_dim: int, seq: int, block_m: int,
              batch_heads: int) -> bool:
    """Whether the parallel forward takes its earlier key blocks' row sums from the keys' Gram matrix (FWD_GRAM).
    The rule holds where it was measured: F = 16 (G is F × F, so larger F costs more and was not timed)."""
    if kernel != "rebased" or seq <= block_m:  # one query block has no key block wholly before it
        return False
    if FWD_GRAM is not None:
        return bool(FWD_GRAM)
    return (dtype == torch.bfloat16 and _pad(feature_dim) == 16 and _pad(value_dim) == 16 and seq >= 2048
            and batch_heads * seq >= FWD_GRAM_MIN_ROWS)


def _backward(q, k, v, out32, denominator, grad_out, kernel: str, algorithm: str, chunk_size: int | None,
              forward_states: tuple[torch.Tensor, torch.Tensor] | None = None):
    batch, seq, heads, feature_dim = q.shape
    value_dim = v.shape[-1]
    cfg = _config(algorithm, chunk_size, q.dtype, value_dim, feature_dim, seq)
    block_f, block_d = _pad(feature_dim), _pad(value_dim)
    precision = _precision(q.dtype)
    # δ_i = (do_i · o_i) / Z_i from the unrounded o, and 1/Z_i for the kernels (rather than a division per tile
    # there): [batch, heads, seq] fp32 each. The parallel form's rebased backward takes both × 1/F (its per-row
    # factors, applied here once per row instead of in every query step); the chunked form needs them plain.
    chunked = algorithm == "chunked"
    delta = torch.empty_like(denominator)
    reciprocal = torch.empty_like(denominator)
    # [rows, D] fp32 tiles of at most 4096 entries (64, 128 and 256 rows alike at D ≤ 64: s14-2026-11-30, call 4)
    prep_rows = 64 if block_d <= 64 else 32
    bwd_prep_kernel[(batch * heads, triton.cdiv(seq, prep_rows))](
        grad_out, out32, denominator, delta, reciprocal, *_strides4(grad_out), *_strides4(out32),
        seq, heads, value_dim, 1.0 / math.sqrt(feature_dim), BT=prep_rows, BD=block_d,
        SCALED=not chunked and kernel == "rebased",
    )
    dk = torch.empty_like(k, memory_format=torch.contiguous_format)
    dv = torch.empty_like(v, memory_format=torch.contiguous_format)
    if chunked:  # each program owns its chunk's dq and stores it; BM == BN == chunk
        _check_chunked_config(cfg)
        dq = torch.empty_like(q, memory_format=torch.contiguous_format)
        state, vec = forward_states or _prefix_states(k, v, None, None, kernel, cfg, block_d, precision,
                                                      backward=False)[:2]
        rstate, wvec, num_blocks = _prefix_states(q, grad_out, reciprocal, delta, kernel, cfg, block_d, precision,
                                                  backward=True)
        if state.shape != rstate.shape:  # the kernel addresses both with this config's chunks and feature blocks
            raise RuntimeError(f"chunked backward: the forward's kept states {tuple(state.shape)} do not fit this "
                               f"config's {tuple(rstate.shape)} (CONFIG_OVERRIDE changed between forward and backward)")
    else:  # dq sums over key blocks (programs): fp32 atomics into a zeroed buffer
        # Half inputs then pay a torch cast (36 µs of 2.03 ms at 64×2048×12 D16 on the H200). Having the program that
        # adds last into a query tile write it in q's dtype instead (per-tile arrival counters) was slower: counted at
        # every query step, the backward kernel took 2.29 ms instead of 1.25; counted once per program at its end,
        # 1.35 (results/bench/kernels-grid/s14-2026-11-30/, calls 4 and 5).
        dq = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
        state = vec = rstate = wvec = delta  # unused (INTER=False)
        num_blocks = 0
    scale = 1.0 / math.sqrt(feature_dim)
    block_m, block_n, warps = cfg.block_m, cfg.block_n, cfg.bwd_warps or cfg.num_warps
    if cfg.bwd_block and not chunked:  # the chunked form's diagonal tiles are its chunks
        block_m, block_n = cfg.bwd_block, cfg.bwd_block_n or cfg.bwd_block
    # no block passes T and no padded columns: the kernel drops its masks (a constant-true mask is folded away)
    even = seq % block_m == 0 and seq % block_n == 0 and feature_dim == block_f and value_dim == block_d
    # the parallel form's dv, dk sums added right after each tile's products (_bwd_tile's ACC_IN_TILE) at 4 warps and
    # more, where ptxas then needs fewer registers (offline sm_90: bf16 32×128 tiles 190 → 154, 64×2048 D16; 234 →
    # 168 at D5); at 2 warps after dq's product, which needs fewer there (32×64: 168 against 204 at D16, 189 against
    # 215 at D5; 32×128: 255 against 249, 4 programs per SM either way). results/bench/kernels-grid/s14-2026-11-30/
    # Timed on the H200 (s15-2026-11-30, call 1): fp32's 64×64×4 tiles 256×512×12 D16 fwd+bwd 3.56 → 3.37 ms; bf16
    # at 32×128×4 with it still loses to the default 32×128×2 (64×2048×12 D16 2.54 against 2.03 ms).
    acc_in_tile = not chunked and warps >= 4
    for grads, acc in _CHUNKED_BWD_LAUNCHES[_chunked_bwd_layout(value_dim) if chunked else "sum"]:
        parallel_bwd_kernel[_grid(cfg.head_major, batch * heads, triton.cdiv(seq, block_n))](
            q, k, v, grad_out, reciprocal, delta, dq, dk, dv, state, vec, rstate, wvec,
            *_strides4(q), *_strides4(k), *_strides4(v), *_strides4(grad_out), *_strides4(dq), *_strides4(dk),
            *_strides4(dv), seq, heads, feature_dim, value_dim, scale, num_blocks, scale,
            KERNEL=KERNEL_IDS[kernel], BM=block_m, BN=block_n, BF=block_f, BD=block_d, INTER=chunked,
            BE=cfg.block_e, DOT_DTYPE=_DOT_DTYPES[q.dtype], PRECISION=precision, PRECISE=_precise(),
            INTER_GRADS=grads, INTER_ACC=acc, TWO_MMA=chunked and _two_mma(q.dtype), HEAD_MAJOR=cfg.head_major,
            ROWS32=_rows32(seq, max(block_m, block_n), q, k, v, grad_out, dq, dk, dv), EVEN=even,
            ACC_IN_TILE=acc_in_tile, num_warps=warps, num_stages=cfg.bwd_stages or cfg.num_stages,
            **({"maxnreg": cfg.bwd_maxnreg} if cfg.bwd_maxnreg else {}),
        )
    if dq.dtype != q.dtype:
        dq = dq.to(q.dtype)
    return dq, dk, dv


class LinearAttentionFunction(torch.autograd.Function):
    """Autograd over the Triton kernels; saves q, k, v, o (in fp32) and the fp32 denominator, recomputes the rest."""

    @staticmethod
    def forward(ctx, q, k, v, kernel: str, eps: float, algorithm: str, chunk_size: int | None):
        out, out32, denominator, kept_states = _forward(q, k, v, kernel, eps, algorithm, chunk_size)
        # out32 is out itself for fp32 inputs; the chunked form's prefix states ride along when kept
        ctx.save_for_backward(q, k, v, out32, denominator, *(kept_states or ()))
        ctx.kernel, ctx.algorithm, ctx.chunk_size = kernel, algorithm, chunk_size
        return out

    @staticmethod
    @first_order_only("the Triton linear attention")  # the kernels' gradients have no graph: say so, not drop terms
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v, out, denominator, *kept_states = ctx.saved_tensors
        dq, dk, dv = _backward(q, k, v, out, denominator, grad_out, ctx.kernel, ctx.algorithm, ctx.chunk_size,
                               tuple(kept_states) or None)
        return dq, dk, dv, None, None, None, None


# Opaque to torch.compile (Trainer's compile_model): inductor re-generating these kernels failed on Triton 3.6 (a
# float argument typed fp64 against the fp32 loop state), and it could not fuse anything into them anyway.
@torch.compiler.disable
def linear_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel: str = "based",
    eps: float = 1e-6,
    algorithm: str = "auto",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Causal Based/ReBased linear attention on the Triton kernels, differentiable in q, k, v.

    q, k: [batch, seq, heads, F]; v: [batch, seq, heads, D] -> [batch, seq, heads, D], all of one dtype; F up to 64,
    D up to 128 (mqar.kernels.TRITON_MAX_FEATURE_DIM, TRITON_MAX_VALUE_DIM: wider heads are a UserError).
    kernel: "based" | "rebased"; algorithm: "auto" (choose_algorithm) | "parallel" | "chunked".
    chunk_size: the chunk length of the chunked form (a power of two ≥ 16; default 64, 32 in the interpreter).
    fp32, bf16 and fp16 run natively; other floating dtypes are computed in fp32 and cast back. A value width that is
    not a multiple of 16 runs padded with zero columns where that was measured faster (PAD_VALUES): same results.
    """
    check_inputs(q, k, v, kernel, algorithm, eps)  # the package's one argument check (a UserError is a ValueError)
    check_triton_dims(q, v)
    check_triton_device(q, "q")
    if chunk_size is not None and (chunk_size < 16 or chunk_size & (chunk_size - 1)):
        raise ValueError(f"chunk_size must be a power of two ≥ 16, got {chunk_size}")
    return linear_attention_triton_unchecked(q, k, v, kernel, eps, algorithm, chunk_size)


@torch.compiler.disable  # as linear_attention_triton (see there)
def linear_attention_triton_unchecked(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str, eps: float, algorithm: str,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """linear_attention_triton for callers that have checked its arguments already (mqar.kernels.linear_attention)."""
    batch, seq, heads, feature_dim = q.shape
    out_dtype = q.dtype
    dtype = q.dtype if q.dtype in _DOT_DTYPES else torch.float32
    if INTERPRETER and dtype != torch.float32:
        dtype = torch.float32  # the interpreter's half-precision tl.dot is wrong; compute in fp32 there
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    if seq == 0 or batch == 0 or heads == 0:
        return q.new_zeros(batch, seq, heads, v.shape[-1]).to(out_dtype)
    value_dim = v.shape[-1]
    if algorithm == "auto":
        algorithm = choose_algorithm(batch, seq, heads, feature_dim, value_dim, dtype)
    padded_dim = _padded_value_dim(value_dim, seq, dtype)
    if padded_dim != value_dim:  # see PAD_VALUES; autograd cuts dv back and pads do
        v = torch.nn.functional.pad(v, (0, padded_dim - value_dim))  # [B, T, H, padded_dim], contiguous
    with on_device_of(q):  # the backward runs on autograd's thread for q's device, where that device is current
        out = LinearAttentionFunction.apply(q, k, v, kernel, eps, algorithm, chunk_size)
    if padded_dim != value_dim:
        out = out[..., :value_dim].contiguous()
    return out.to(out_dtype)
