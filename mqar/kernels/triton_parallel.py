"""The parallel (tile, quadratic-in-T) form of Based / ReBased causal linear attention, in Triton.

Flash-attention style: one program per (query block, batch·head) walks the key blocks up to the diagonal, forms
the similarity tile A = poly(q·kᵀ/√F) in registers and accumulates A·v and the row sums of A in fp32. Nothing
of size T×T ever reaches memory. The backward recomputes the tiles once: one program per key block walks the
query blocks from the diagonal on, keeps dk, dv in registers and adds each tile's dq into an fp32 buffer with
atomics (a separate dq pass would recompute every s and A a second time).

Maths (o = N / Z, N_i = Σ_{j≤i} A_ij v_j, Z_i = Σ_{j≤i} A_ij + eps; g_i = do_i / Z_i, δ_i = g_i·o_i):
    dA_ij = g_i·v_j − δ_i,   dv_j = Σ_{i≥j} A_ij g_i,   ds_ij = dA_ij · A'(s_ij),
    dq_i = Σ_j ds_ij k_j / √F,   dk_j = Σ_i ds_ij q_i / √F,
with A'(s) = 1 + s (based) or 2s (rebased).

The same kernels serve the chunked form (INTER): they visit only the diagonal block (the intra-chunk part,
chunk = block) and add the contribution of the other chunks from the prefix states that `triton_chunked` built.

Each (batch, head)'s base offset is computed in int64 (batch·seq·heads·dim may pass 2³¹); the row offsets within
one head are int32 where the host has checked that every tensor's fit (ROWS32, triton_ops._rows32), else int64.
Every tensor is addressed through its strides, so non-contiguous inputs need no copy. F and D are padded to tiles of
at least 16 with masks.
"""

from __future__ import annotations

import triton
import triton.language as tl

from mqar.kernels.triton_chunked import inter_dkdv, inter_dq, inter_forward

KERNEL_IDS = {"based": 0, "rebased": 1}


@triton.jit
def _mm(a, b, acc, DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr):
    """acc + a @ b in fp32 where a is fp32 and b is exact in DOT_DTYPE (an input tile): the forward's A·v (and,
    for bf16, its row sums Σ_j A against a tile of ones). acc goes into the MMA as its accumulator (no separate add).

    bf16 inputs: a is split into hi + lo bf16 halves, so two bf16 MMAs give it ~16 mantissa bits instead of 8:
    bf16-rounding the similarity A before A·v shifted o by 2⁻⁹ relative and, through δ = do·o and the cancellation
    in dA = g·v − δ, failed the 5e-3 gradient check on the GPU. fp16 has too little range for the split and fp32
    inputs need none: both take one fp32 dot at PRECISE (tf32x3, ≈ fp32).
    """
    if DOT_DTYPE != tl.bfloat16:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision=PRECISE)
    else:
        a_hi, a_lo = _bf16_halves(a)
        return tl.dot(a_lo, b, tl.dot(a_hi.to(tl.bfloat16), b, acc))


@triton.jit
def _bf16_halves(a):
    """fp32 a as hi + lo (~16 mantissa bits between them; _mm, _gram_row_sums): hi in fp32 with its low 16 bits
    clear (exact in bf16: the caller's conversion is a plain pack), lo in bf16.

    Truncating hi rather than rounding a to bf16 and widening it back: the rounded split cost per element F2F + a
    widening shift (IMAD.U32) + PRMT packing in the offline sm_90 SASS of the forward's key loop, this one a LOP3
    and half an F2FP (results/bench/kernels-grid/2026-11-30/parallel-offline.md). a − hi is exact; lo rounded to
    bf16 leaves ≤ 2⁻¹⁶ relative (≤ 2⁻¹⁷ for the rounded split), against bf16's 2⁻⁹."""
    a_hi = (a.to(tl.uint32, bitcast=True) & 0xFFFF0000).to(tl.float32, bitcast=True)
    return a_hi, (a - a_hi).to(tl.bfloat16)


@triton.jit
def _exact_dot(a, b, acc, DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr):
    """acc + a @ b (acc None: a @ b) for input tiles: half inputs and their products are exact in the fp32
    accumulator; fp32 inputs take PRECISE (tf32x3, ≈ fp32)."""
    if DOT_DTYPE == tl.float32:
        return tl.dot(a, b, acc, input_precision=PRECISE)
    else:
        return tl.dot(a, b, acc)


@triton.jit
def _rows(offs, ROWS32: tl.constexpr):
    """Row indices for the offsets row·stride within one head: int32 when ROWS32 (the host checked that every
    tensor's rows·stride(1) + columns·stride(3) fit, padded rows included), int64 otherwise. An int64 row offset
    is a 64-bit multiply and a 64-bit add per pointer (IMAD.WIDE.U32 + IMAD, LEA + LEA.HI.X), an int32 one a
    sign-extending IMAD.WIDE / LEA.HI.X.SX32 (offline sm_90 SASS, parallel-offline.md, round 2)."""
    if ROWS32:
        return offs
    else:
        return offs.to(tl.int64)


@triton.jit
def _bound(offs, n, EVEN: tl.constexpr):
    """offs < n, or where the host has checked that no block passes n (EVEN) a constant true, which the compiler
    folds away: unmasked loads, stores and atomics, no per-step cp.async predicates (offline sm_90 SASS,
    results/bench/kernels-grid/2026-12-01/bwd-offline.md)."""
    if EVEN:
        return tl.full(offs.shape, 1, tl.int1)
    else:
        return offs < n


@triton.jit
def _program_tile(T, BLOCK: tl.constexpr, HEAD_MAJOR: tl.constexpr):
    """-> (batch·head, block) of this program, the batch·head in int64.

    HEAD_MAJOR (a 1-D grid of B·H·cdiv(T, BLOCK) programs): a head's blocks are consecutive programs, so the programs
    in flight share a few heads' rows in L2. Otherwise (grid (B·H, blocks)) the programs in flight are one block of
    hundreds of heads, and a head's rows are evicted before its next block reads them again. triton_ops'
    _Config.head_major chooses, by measurement.
    """
    if HEAD_MAJOR:
        num_blocks = tl.cdiv(T, BLOCK)
        pid = tl.program_id(0).to(tl.int64)
        return pid // num_blocks, (pid % num_blocks).to(tl.int32)
    else:
        return tl.program_id(0).to(tl.int64), tl.program_id(1)


@triton.jit
def _tile_row_sums(z, a, BN: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr):
    """z + the row sums of the tile a [BM, BN] fp32. bf16: by the same two MMAs as A·v on a column of ones (z [BM, 16],
    every column the sum): ~16 bits, like A·v, and no per-tile FADD tree and quad shuffles (offline sm_90 SASS,
    parallel-offline.md)."""
    if DOT_DTYPE == tl.bfloat16:
        return _mm(a, tl.full([BN, 16], 1.0, tl.float32).to(DOT_DTYPE), z, DOT_DTYPE, PRECISE)
    else:
        return z + tl.sum(a, axis=1)


@triton.jit
def _fwd_tile(acc, z, q, k_base, v_base, start_n, offs_m, offs_f, offs_d, mask_f, mask_d, skt, skf, svt, svd, T,
              scale, KERNEL: tl.constexpr, BN: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
              PRECISE: tl.constexpr, ROWS32: tl.constexpr, PAD_FD: tl.constexpr, GRAM: tl.constexpr, causal):
    """One key block of the forward: acc += A·v, and z += its row sums Σ_j A. causal (a runtime flag): the block
    reaches past the query block's first row, so j > i entries are zeroed. Rebased sums (q·k)² unscaled (the
    caller applies 1/F). PAD_FD: F < BF or D < BD, so k, v are loaded with row and column masks. GRAM: only causal
    blocks add to z; the caller has the others' row sums from the keys' Gram matrix (_gram_row_sums)."""
    offs_n = start_n + tl.arange(0, BN)
    if PAD_FD:
        mask_n = offs_n < T
        rows_n = _rows(offs_n, ROWS32)
        k = tl.load(k_base + rows_n[:, None] * skt + offs_f[None, :] * skf, mask=mask_n[:, None] & mask_f[None, :], other=0.0)
        v = tl.load(v_base + rows_n[:, None] * svt + offs_d[None, :] * svd, mask=mask_n[:, None] & mask_d[None, :], other=0.0)
    else:
        # F = BF and D = BD: no column masks, and rows past T are clamped to row T − 1 rather than masked. Only a key
        # block that reaches past the query block's first row (causal: start_n + BN > T > pid_m·BM) holds them, and
        # there j > i zeroes their A for every stored row i < T (a non-finite k or v row then reaches earlier rows'
        # MMAs as 0·x, as the in-range rows j > i of the diagonal block already do). Unpredicated copies need no
        # per-row compares and selects, and without offs_n < T LLVM keeps the loop counter int32 (it widened it to
        # int64, and the causal compares with it). Offline sm_90 SASS, bf16 rebased F = D = 16: key loop 217 → 202
        # instructions, cold causal block 116 → 78. Padded widths keep the masks above: with D = 42 (scalar copies)
        # the clamp costs a min per element and the loop grew 435 → 453
        # (results/bench/kernels-grid/2026-12-01/fwd-tma-offline.md).
        rows_n = _rows(tl.minimum(offs_n, T - 1), ROWS32)
        k = tl.load(k_base + rows_n[:, None] * skt + offs_f[None, :] * skf)
        v = tl.load(v_base + rows_n[:, None] * svt + offs_d[None, :] * svd)
    qk = tl.dot(q, tl.trans(k.to(DOT_DTYPE)), input_precision=PRECISION)  # [BM, BN] fp32, √F s
    if KERNEL == 1:
        a = qk * qk
    else:
        # based, 1 + s + s²/2 with s = scale·qk, as qk·(scale + scale²/2·qk) + 1: two FFMA per score where scaling
        # qk first and then forming 1 + s + s²/2 took two FMUL and two FFMA (offline sm_90 SASS, bf16 F = D = 16: key
        # loop 299 → 234 instructions, results/bench/kernels-grid/2026-12-01/fwd-tma-offline.md); a few fp32 ulps apart
        a = qk * (scale + (0.5 * scale * scale) * qk) + 1.0
    if causal:
        a = tl.where(offs_n[None, :] <= offs_m[:, None], a, 0.0)
    if GRAM:
        if causal:
            z = _tile_row_sums(z, a, BN, DOT_DTYPE, PRECISE)
    else:
        z = _tile_row_sums(z, a, BN, DOT_DTYPE, PRECISE)
    acc = _mm(a, v.to(DOT_DTYPE), acc, DOT_DTYPE, PRECISE)
    return acc, z


@triton.jit
def key_gram_kernel(
    K, GRAM,  # k [B, T, H, F]; out: Σ k kᵀ [B·H, NB, BF, BF] fp32
    skb, skt, skh, skf,
    T, H, F,
    BN: tl.constexpr, BF: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr,
):
    """Each key block's Gram matrix Σ_j k_j k_jᵀ over its BN rows, for the parallel rebased forward's GRAM: one program
    per (batch·head, block), grid B·H·NB with NB = cdiv(T, BN), slot = batch·head·NB + block. Half inputs and their
    products are exact in the fp32 sums; fp32 inputs take PRECISE (tf32x3)."""
    slot = tl.program_id(0).to(tl.int64)
    num_blocks = tl.cdiv(T, BN)
    pid_bh = slot // num_blocks
    offs_n = (slot % num_blocks).to(tl.int32) * BN + tl.arange(0, BN)
    offs_f = tl.arange(0, BF)
    k_ptrs = K + (pid_bh // H) * skb + (pid_bh % H) * skh + offs_n.to(tl.int64)[:, None] * skt + offs_f[None, :] * skf
    k = tl.load(k_ptrs, mask=(offs_n < T)[:, None] & (offs_f < F)[None, :], other=0.0).to(DOT_DTYPE)
    gram = _exact_dot(tl.trans(k), k, tl.zeros([BF, BF], dtype=tl.float32), DOT_DTYPE, PRECISE)
    tl.store(GRAM + slot * BF * BF + offs_f[:, None] * BF + offs_f[None, :], gram)


@triton.jit
def _gram_row_sums(z, q, GRAMS, slot, offs_f, BF: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr):
    """z + each query row's Σ_j (q·k_j)² over the keys whose Gram matrix G = Σ_j k_j k_jᵀ [BF, BF] is in slot slot of
    GRAMS: qᵀGq, unscaled (the caller applies 1/F), once per row. G is an fp32 sum: bf16 inputs take it as hi + lo
    bf16 halves (q exact; ~16 bits, like A·v), the others ≈ fp32 (PRECISE). qᵀGq ≥ 0 in exact arithmetic: rounding
    can leave it a little below 0 only where q is (nearly) orthogonal to every key, so it is clamped at 0."""
    gram = tl.load(GRAMS + slot * BF * BF + offs_f[:, None] * BF + offs_f[None, :])
    qf = q.to(tl.float32)
    if DOT_DTYPE == tl.bfloat16:
        g_hi, g_lo = _bf16_halves(gram)
        qg = tl.dot(q, g_lo, tl.dot(q, g_hi.to(tl.bfloat16)))
    else:
        qg = tl.dot(qf, gram, input_precision=PRECISE)
    return z + tl.maximum(tl.sum(qg * qf, axis=1), 0.0)


@triton.jit
def parallel_fwd_kernel(
    Q, K, V, O, Z,  # q, k [B, T, H, F]; v, o [B, T, H, D]; z [B, H, T] fp32 (denominator incl. eps, for bwd)
    O32,  # fp32 copy of o, contiguous [B, T, H, D] (SAVE_O32): the backward's δ = do·o needs o unrounded
    STATE, VEC,  # INTER: prefix states [B·H, NC + 1, E_PAD, D] and normalisers [B·H, NC + 1, E_PAD], fp32;
    # GRAM: the keys' Gram matrices [B·H, cdiv(T, BN), BF, BF], slot c summed over the key blocks up to c
    sqb, sqt, sqh, sqf,
    skb, skt, skh, skf,
    svb, svt, svh, svd,
    sob, sot, soh, sod,
    T, H, F, D, scale, eps, NUM_EB, scale_f,
    KERNEL: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    INTER: tl.constexpr, BE: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
    PRECISE: tl.constexpr, SAVE_O32: tl.constexpr, HEAD_MAJOR: tl.constexpr, ROWS32: tl.constexpr,
    PAD_FD: tl.constexpr, GRAM: tl.constexpr,
):
    """o and z for one query block of BM rows: its key blocks of BN rows (INTER: only the diagonal one, the earlier
    chunks from the prefix states). PAD_FD: F < BF or D < BD (the key loop masks k, v only then, _fwd_tile).
    GRAM (rebased, not with INTER): the key blocks wholly before the query block form only A·v; their row sums come
    from the keys' prefix Gram matrix (key_gram_kernel, then summed over blocks), once per row (_gram_row_sums).
    Loading q, k, v through Hopper TMA descriptors instead of pointers was slower on the H200 (64×2048×12 D16 bf16
    forward 0.71 against 0.67 ms, based 256×512 0.51 against 0.26; results/bench/kernels-grid/s15-2026-11-30/)."""
    pid_bh, pid_m = _program_tile(T, BM, HEAD_MAJOR)
    pid_m = tl.cdiv(T, BM) - 1 - pid_m  # heaviest query blocks (most keys) first
    b = pid_bh // H
    h = pid_bh % H
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh

    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_f = tl.arange(0, BF)
    offs_d = tl.arange(0, BD)
    mask_m = offs_m < T
    mask_f = offs_f < F
    mask_d = offs_d < D
    rows_m = _rows(offs_m, ROWS32)

    q = tl.load(q_base + rows_m[:, None] * sqt + offs_f[None, :] * sqf, mask=mask_m[:, None] & mask_f[None, :], other=0.0)
    q = q.to(DOT_DTYPE)  # 1/√F is applied to s in fp32: a scaled, re-rounded q would differ between passes

    acc = tl.zeros([BM, BD], dtype=tl.float32)
    if DOT_DTYPE == tl.bfloat16:
        z = tl.zeros([BM, 16], dtype=tl.float32)  # row sums through the MMA (_tile_row_sums), reduced after the loop
    else:
        z = tl.zeros([BM], dtype=tl.float32)
    hi = tl.minimum((pid_m + 1) * BM, T)
    if INTER:
        lo = pid_m * BM
    else:
        lo = 0
    for start_n in range(lo, hi, BN):
        # Key blocks wholly below the query block's first row skip the causal mask: most of them at long T. (A
        # branch, not a second loop: a second pipelined loop doubled the shared-memory buffers and was slower at
        # D = 42 and 64, results/bench/kernels-grid/2026-11-30/.)
        acc, z = _fwd_tile(acc, z, q, k_base, v_base, start_n, offs_m, offs_f, offs_d, mask_f, mask_d, skt, skf,
                           svt, svd, T, scale, KERNEL, BN, DOT_DTYPE, PRECISION, PRECISE, ROWS32, PAD_FD, GRAM,
                           start_n + BN > pid_m * BM)
    if DOT_DTYPE == tl.bfloat16:
        z = tl.max(z, axis=1)  # the 16 columns are equal
    num_before = pid_m * BM // BN  # GRAM: the key blocks wholly before the query block
    if GRAM and num_before > 0:  # their sums are in slot num_before − 1 of key_gram_kernel's prefix sums
        z = _gram_row_sums(z, q, STATE, pid_bh * tl.cdiv(T, BN) + num_before - 1, offs_f, BF, DOT_DTYPE, PRECISE)
    if KERNEL == 1:  # rebased tiles summed (q·k)², without the 1/F of s² = (q·k)²/F: applied once here
        acc = acc * (scale * scale)
        z = z * (scale * scale)

    zrow = rows_m  # [B, H, T] contiguous: offset (b·H + h)·T + t
    if INTER:  # the chunks before this one (chunk = this query block), from slot pid_m of the prefix states
        slot = pid_bh * (tl.cdiv(T, BM) + 1) + pid_m
        acc, z = inter_forward(acc, z, q.to(tl.float32), mask_m, STATE, VEC, slot, F, D, offs_d, mask_d,
                               NUM_EB, scale_f, KERNEL, BE, BF, PRECISION)
    z = z + eps
    o = acc / z[:, None]
    o_base = O + b * sob + h * soh
    tl.store(o_base + rows_m[:, None] * sot + offs_d[None, :] * sod, o.to(O.dtype.element_ty), mask=mask_m[:, None] & mask_d[None, :])
    tl.store(Z + pid_bh * T + zrow, z, mask=mask_m)
    if SAVE_O32:
        o32_rows = (b * T + rows_m) * H + h  # [BM] row index of contiguous [B, T, H, D]
        tl.store(O32 + o32_rows[:, None] * D + offs_d[None, :], o, mask=mask_m[:, None] & mask_d[None, :])


@triton.jit
def bwd_prep_kernel(
    DO, O, Z, DELTA, RZ,  # do [B, T, H, D] (any strides), o [B, T, H, D] fp32; Z, δ, 1/Z [B, H, T] fp32
    sdb, sdt, sdh, sdd,
    sob, sot, soh, sod,
    T, H, D, scale,
    BT: tl.constexpr, BD: tl.constexpr, SCALED: tl.constexpr,
):
    """The backward's per-row inputs, one pass over do and o: δ_i = (do_i·o_i) / Z_i and 1/Z_i, both × scale²
    (= 1/F) where SCALED (the parallel form's rebased backward, _bwd_tile's RZ_SCALED). Grid (B·H,
    cdiv(T, BT)). As torch ops (a cast, a product, a last-dim sum, a transpose, two divisions) the same took ~0.4 ms
    at 64×2048×12 D16 on the H200, a sixth of that shape's fwd+bwd (session 13, call 2's kernel breakdown)."""
    pid_bh = tl.program_id(0).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    offs_t = tl.program_id(1) * BT + tl.arange(0, BT)
    offs_d = tl.arange(0, BD)
    mask_t = offs_t < T
    mask = mask_t[:, None] & (offs_d < D)[None, :]
    rows = offs_t.to(tl.int64)[:, None]
    do = tl.load(DO + b * sdb + h * sdh + rows * sdt + offs_d[None, :] * sdd, mask=mask, other=0.0).to(tl.float32)
    o = tl.load(O + b * sob + h * soh + rows * sot + offs_d[None, :] * sod, mask=mask, other=0.0)
    z = tl.load(Z + pid_bh * T + offs_t, mask=mask_t, other=1.0)
    delta = tl.sum(do * o, axis=1) / z
    rz = 1.0 / z
    if SCALED:  # the same fp32 products _bwd_tile formed per query step before (scale2 as there)
        scale2 = scale * scale
        delta = delta * scale2
        rz = rz * scale2
    tl.store(DELTA + pid_bh * T + offs_t, delta, mask=mask_t)
    tl.store(RZ + pid_bh * T + offs_t, rz, mask=mask_t)


@triton.jit
def _bwd_tile(dv, dk, k, kq, v, q_base, do_base, RZ, DELTA, zt_base, start_m, offs_n, offs_f, offs_d, mask_f,
              mask_d, sqt, sqf, sdot, sdod, T, scale,
              KERNEL: tl.constexpr, BM: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
              PRECISE: tl.constexpr, ROWS32: tl.constexpr, CAUSAL: tl.constexpr, EVEN: tl.constexpr,
              RZ_SCALED: tl.constexpr, ACC_IN_TILE: tl.constexpr):
    """One (key block, query block) tile of the backward, sᵀ and Aᵀ recomputed once for all three gradients.

    dv [BN, BD], dk [BN, BF]: the fp32 sums the tile's dv and dk are added to (zeros for the chunked form's one
    tile). k [BN, BF], v [BN, BD] in DOT_DTYPE; kq: the key tile dq is formed with, 2k for rebased (exact), else k.
    ACC_IN_TILE: each sum is added right after its product, else both after dq's product. Either way the add
    becomes the MMA's accumulator (same MMAs, same bits); only the products' order in the program differs, and
    ptxas's schedule, hence the registers, follow it (offline sm_90 SASS, bf16 rebased 64×2048 D16: 32×128 tiles
    at 4 warps 190 → 154 registers with it, 3 programs per SM instead of 2; at 2 warps 32×64 168 → 204, 4 instead
    of 6; results/bench/kernels-grid/s14-2026-11-30/bwd-offline.md).
    Returns dv + the tile's dv, dk + the tile's dk (already × 1/√F; rebased: half of it, the caller doubles it),
    dq [BM, BF] (already × 1/√F) in fp32, and for the chunked form the query rows' g = do/Z [BM, BD], δ [BM] and
    their q tile [BM, BF] in DOT_DTYPE (q's own dtype: exact in fp32, 0 past F and T), so it is loaded once, and
    do [BM, BD] in DOT_DTYPE with rz = 1/Z [BM] (g's factors, for the chunked dq's two-MMA product).
    CAUSAL: the tile straddles the diagonal (j > i entries zeroed); off-diagonal tiles skip the mask. Rows past T
    need no mask: they load do = 0, δ = 0 and rz = 0 (so g = 0, dA = 0), and contribute nothing.
    RZ_SCALED (rebased only): RZ and DELTA hold 1/Z and δ already × 1/F (bwd_prep_kernel's SCALED); then the
    returned g, δ and rz carry that factor too (the chunked form, which uses them, does not set it).
    """
    offs_m = start_m + tl.arange(0, BM)
    mask_m = _bound(offs_m, T, EVEN)
    rows_m = _rows(offs_m, ROWS32)
    q = tl.load(q_base + rows_m[:, None] * sqt + offs_f[None, :] * sqf, mask=mask_m[:, None] & mask_f[None, :], other=0.0).to(DOT_DTYPE)
    do = tl.load(do_base + rows_m[:, None] * sdot + offs_d[None, :] * sdod, mask=mask_m[:, None] & mask_d[None, :], other=0.0).to(DOT_DTYPE)
    # RZ holds 1/Z (triton_ops._backward): a division per tile was MUFU.RCP + range checks per row in every query step
    # of the offline sm_90 SASS (parallel-offline.md). Rows past T: rz = 0 (do = 0 there anyway).
    rz = tl.load(RZ + zt_base + rows_m, mask=mask_m, other=0.0)
    delta = tl.load(DELTA + zt_base + rows_m, mask=mask_m, other=0.0)
    g = do.to(tl.float32) * rz[:, None]  # [BM, BD] fp32

    if KERNEL == 1:
        # rebased: A = s², A' = 2s both vanish at s = 0, so zeroing the raw product q·k masks both, and the scale
        # (s = q·k/√F) folds into per-row factors: ~5 fewer operations per score than the generic path below.
        qk = tl.dot(k, tl.trans(q), input_precision=PRECISION)  # [BN, BM] = √F sᵀ
        if CAUSAL:
            qk = tl.where(offs_m[None, :] >= offs_n[:, None], qk, 0.0)
        # per-row factors once per row, not per score: rz/F and δ/F (ds's factor 2 rides on kq = 2k and the
        # caller's final dk × 2, exact: the same bits as forming 2·ds, and 24 instead of 40 per-column FMUL / FADD
        # per query step in the offline sm_90 SASS), or none per step where bwd_prep_kernel applied them (RZ_SCALED)
        if RZ_SCALED:
            rzs = rz
            deltas = delta
        else:
            scale2 = scale * scale
            rzs = rz * scale2
            deltas = delta * scale2
        if DOT_DTYPE == tl.float32:
            dv_t = tl.dot(qk * qk, do.to(tl.float32) * rzs[:, None], input_precision=PRECISION)
        else:  # as below: P = A/Z rounded once
            dv_t = tl.dot((qk * qk * rzs[None, :]).to(DOT_DTYPE), do)
    else:
        st = tl.dot(k, tl.trans(q), input_precision=PRECISION) * scale  # [BN, BM] = sᵀ
        # based: A = 1 + s(1 + s/2), two FFMA (Horner; 1 + s + s²/2 to fp32 rounding), and ds below as
        # dA'·s + dA' with dA' = dvdo·(rz/√F) − δ/√F, the 1/√F on per-row factors: 6 instead of 8 fp32 operations
        # per score in the offline sm_90 SASS
        at = st * (0.5 * st + 1.0) + 1.0
        if CAUSAL:
            causal = offs_m[None, :] >= offs_n[:, None]
            at = tl.where(causal, at, 0.0)
        if DOT_DTYPE == tl.float32:
            dv_t = tl.dot(at, g, input_precision=PRECISION)
        else:  # dv = Σ_i (A_ij / Z_i) do_i: do exact, P = A/Z ∈ [0, 1] rounded once (nothing cancels here): one MMA
            dv_t = tl.dot((at * rz[None, :]).to(DOT_DTYPE), do)
    if ACC_IN_TILE:
        dv += dv_t
    # dA = g·v − δ cancels (Σ_j A_ij (v_j − o_i) = 0), so it is formed as (do·v)/Z − δ: do and v are exact in
    # DOT_DTYPE, their products exact in the fp32 accumulator: one MMA, no split (fp32 inputs: PRECISE).
    dvdo = _exact_dot(v, tl.trans(do), None, DOT_DTYPE, PRECISE)
    if KERNEL == 1:  # ds = dA · 2s / √F = (dvdo/Z − δ) · qk · 2/F, masked through qk; formed here without the 2
        dst = (dvdo * rzs[None, :] - deltas[None, :]) * qk
    else:
        dat = dvdo * (rz * scale)[None, :] - (delta * scale)[None, :]  # dA/√F
        dst = dat * st + dat  # dA · A'(s) / √F, A' = 1 + s
        if CAUSAL:
            dst = tl.where(causal, dst, 0.0)
    # dk = ds q and dq = dsᵀ k from the same ds. Rounded once after the cancellation, ds costs ~2⁻⁹ relative per
    # term with random sign, about a bf16 output rounding (hi + lo halves here and in dv measured 1.7-1.9e-3 worst
    # relative RMS on the GPU tests' shapes, single roundings 2.4-2.7e-3; bound 5e-3), for half the MMAs.
    if DOT_DTYPE == tl.bfloat16:
        ds = dst.to(DOT_DTYPE)
        dk_t = tl.dot(ds, q)
    else:  # fp16 has too little range for ds (g = do/Z reaches subnormals at long T): fp32 operands (tf32 / tf32x3)
        dk_t = tl.dot(dst, q.to(tl.float32), input_precision=PRECISION)
    if ACC_IN_TILE:
        dk += dk_t
    if DOT_DTYPE == tl.bfloat16:
        dq = tl.dot(tl.trans(ds), kq)
    else:
        dq = tl.dot(tl.trans(dst), kq.to(tl.float32), input_precision=PRECISION)
    if not ACC_IN_TILE:
        dv += dv_t
        dk += dk_t
    return dv, dk, dq, g, delta, rows_m, mask_m, q, do, rz


@triton.jit
def _inter_start(tile_grad, INTER_ACC: tl.constexpr):
    """What a chunked state loop starts from: the diagonal tile's gradient (INTER_ACC) or zeros."""
    if INTER_ACC:
        return tile_grad
    else:
        return tl.zeros_like(tile_grad)


@triton.jit
def _inter_end(tile_grad, loop_result, INTER_ACC: tl.constexpr):
    """The gradient after a state loop begun by _inter_start: the loop's result, or the tile's plus it."""
    if INTER_ACC:
        return loop_result
    else:
        return tile_grad + loop_result


@triton.jit
def parallel_bwd_kernel(
    Q, K, V, DO, RZ, DELTA, DQ, DK, DV,  # rz = 1/z, delta [B, H, T] fp32 (parallel rebased: × 1/F, bwd_prep_kernel); dq: fp32 accumulator (parallel) or dq itself (INTER)
    STATE, VEC, RSTATE, WVEC,  # INTER: prefix states (as in forward) and suffix states Σ φq gᵀ, Σ δ φq (reversed)
    sqb, sqt, sqh, sqf,
    skb, skt, skh, skf,
    svb, svt, svh, svd,
    sdob, sdot, sdoh, sdod,
    sdqb, sdqt, sdqh, sdqf,
    sdkb, sdkt, sdkh, sdkf,
    sdvb, sdvt, sdvh, sdvd,
    T, H, F, D, scale, NUM_EB, scale_f,
    KERNEL: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    INTER: tl.constexpr, BE: tl.constexpr, DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
    PRECISE: tl.constexpr, INTER_GRADS: tl.constexpr, INTER_ACC: tl.constexpr, TWO_MMA: tl.constexpr,
    HEAD_MAJOR: tl.constexpr, ROWS32: tl.constexpr, EVEN: tl.constexpr, ACC_IN_TILE: tl.constexpr,
):
    """dq, dk, dv in one pass: one program per key block of BN rows walks the query blocks of BM rows from the
    diagonal to the end, recomputing each tile's s and A once. dk, dv accumulate in registers; dq, which sums over
    key blocks (programs), is added tile by tile into an fp32 buffer with atomics (DQ, zeroed by the caller).
    INTER (chunked form, BM == BN == chunk): only the diagonal tile, so the program owns its query rows' dq
    outright and stores it (no atomics), plus the other chunks' contributions from the prefix / suffix states.
    How the INTER part is laid out (triton_ops._chunked_bwd_layout picks "sum" = ("all", False) or "split" =
    ("dq", True) then ("dkdv", True); register counts from the offline sm_90 compile, bf16 rebased F = 16, D = 64,
    BE 16, 4 warps):
    - INTER_GRADS: "all" computes and stores dq, dk and dv; "dq" only dq and "dkdv" only dk and dv, for two
      launches that each recompute the diagonal tile (the compiler drops the products a part does not use).
    - INTER_ACC: the state loops start from the tile's gradients (True) or sum from zero and their sums are added
      to the tile's after (False). False lets the compiler sink the tile's dk, dv (and dq) products past the state
      loops, so their bf16 operands (ds, A/Z) stay live through them beside the loops' own: 255 registers and 80 B
      of spilled stack; True, the products come first and nothing spills (at that shape).
    - TWO_MMA (half inputs only; triton_ops.CHUNKED_BWD_TWO_MMA): the state loops' ≈ fp32 products g Sᵀ and v Rᵀ
      take two tf32 MMAs on the input-exact do (then / Z) and v instead of three (tf32x3), see inter_dq /
      inter_dkdv.
    ACC_IN_TILE (the query loops only): where each tile's dv and dk are added to the sums, see _bwd_tile."""
    pid_bh, pid_n = _program_tile(T, BN, HEAD_MAJOR)  # key block 0 (the most query blocks) first
    b = pid_bh // H
    h = pid_bh % H
    offs_n = pid_n * BN + tl.arange(0, BN)
    offs_f = tl.arange(0, BF)
    offs_d = tl.arange(0, BD)
    mask_n = _bound(offs_n, T, EVEN)  # EVEN: T a multiple of BM and BN, F == BF, D == BD (triton_ops._backward)
    mask_f = _bound(offs_f, F, EVEN)
    mask_d = _bound(offs_d, D, EVEN)
    rows_n = _rows(offs_n, ROWS32)

    k = tl.load(K + b * skb + h * skh + rows_n[:, None] * skt + offs_f[None, :] * skf, mask=mask_n[:, None] & mask_f[None, :], other=0.0)
    k = k.to(DOT_DTYPE)
    v = tl.load(V + b * svb + h * svh + rows_n[:, None] * svt + offs_d[None, :] * svd, mask=mask_n[:, None] & mask_d[None, :], other=0.0).to(DOT_DTYPE)
    if KERNEL == 1:  # rebased's ds is formed without A' = 2s's factor 2: dq takes it through 2k, dk at the end
        if DOT_DTYPE == tl.bfloat16:
            kq = (k.to(tl.float32) * 2.0).to(DOT_DTYPE)  # exact (bf16 has fp32's range)
        else:  # fp32; fp16, where 2k could pass 65504 (its dq product takes fp32 operands anyway)
            kq = k.to(tl.float32) * 2.0
    else:
        kq = k

    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdob + h * sdoh
    dq_base = DQ + b * sdqb + h * sdqh
    zt_base = pid_bh * T  # z, delta: [B, H, T] contiguous
    if INTER:
        dv, dk, dq, g, delta, rows_m, mask_m, q, do, rz = _bwd_tile(
            tl.zeros([BN, BD], dtype=tl.float32), tl.zeros([BN, BF], dtype=tl.float32), k, kq, v, q_base, do_base,
            RZ, DELTA, zt_base, pid_n * BN, offs_n, offs_f, offs_d, mask_f, mask_d, sqt, sqf, sdot, sdod, T, scale,
            KERNEL, BM, DOT_DTYPE, PRECISION, PRECISE, ROWS32, True, EVEN, False, True)
        if KERNEL == 1:
            dk = dk * 2.0  # see kq
        num_chunks = tl.cdiv(T, BN)
        if INTER_GRADS != "dkdv":
            # the chunks before this one (slot pid_n of the prefix states) for dq
            dq_slot = pid_bh * (num_chunks + 1) + pid_n
            dq_inter = inter_dq(_inter_start(dq, INTER_ACC), g, do.to(tl.float32), rz, delta, q.to(tl.float32),
                                mask_m, STATE, VEC, dq_slot, F, D, offs_d, mask_d, NUM_EB, scale_f, KERNEL, BE, BF,
                                PRECISION, PRECISE, TWO_MMA)
            dq = _inter_end(dq, dq_inter, INTER_ACC)
            tl.store(dq_base + rows_m[:, None] * sdqt + offs_f[None, :] * sdqf, dq.to(DQ.dtype.element_ty), mask=mask_m[:, None] & mask_f[None, :])
        if INTER_GRADS != "dq":
            # the chunks after this one (slot NC − 1 − pid_n of the suffix states) for dk, dv
            slot = pid_bh * (num_chunks + 1) + num_chunks - 1 - pid_n
            dk_inter, dv_inter = inter_dkdv(_inter_start(dk, INTER_ACC), _inter_start(dv, INTER_ACC),
                                            v.to(tl.float32), k.to(tl.float32), mask_n, RSTATE, WVEC, slot, F, D,
                                            offs_d, mask_d, NUM_EB, scale_f, KERNEL, BE, BF, PRECISION, PRECISE,
                                            TWO_MMA)
            dk = _inter_end(dk, dk_inter, INTER_ACC)
            dv = _inter_end(dv, dv_inter, INTER_ACC)
    else:
        dk = tl.zeros([BN, BF], dtype=tl.float32)
        dv = tl.zeros([BN, BD], dtype=tl.float32)
        lo = (pid_n * BN // BM) * BM  # the query block holding key row pid_n·BN: earlier ones are fully masked
        mid = tl.minimum(tl.cdiv((pid_n + 1) * BN, BM) * BM, T)  # query blocks from here on see every key row
        for start_m in range(lo, mid, BM):
            dv, dk, dq_t, g, delta, rows_m, mask_m, q_t, do_t, rz_t = _bwd_tile(
                dv, dk, k, kq, v, q_base, do_base, RZ, DELTA, zt_base, start_m, offs_n, offs_f, offs_d, mask_f,
                mask_d, sqt, sqf, sdot, sdod, T, scale, KERNEL, BM, DOT_DTYPE, PRECISION, PRECISE, ROWS32, True, EVEN,
                KERNEL == 1, ACC_IN_TILE)
            tl.atomic_add(dq_base + rows_m[:, None] * sdqt + offs_f[None, :] * sdqf, dq_t,
                          mask=mask_m[:, None] & mask_f[None, :], sem="relaxed")
        for start_m in range(mid, T, BM):
            dv, dk, dq_t, g, delta, rows_m, mask_m, q_t, do_t, rz_t = _bwd_tile(
                dv, dk, k, kq, v, q_base, do_base, RZ, DELTA, zt_base, start_m, offs_n, offs_f, offs_d, mask_f,
                mask_d, sqt, sqf, sdot, sdod, T, scale, KERNEL, BM, DOT_DTYPE, PRECISION, PRECISE, ROWS32, False, EVEN,
                KERNEL == 1, ACC_IN_TILE)
            tl.atomic_add(dq_base + rows_m[:, None] * sdqt + offs_f[None, :] * sdqf, dq_t,
                          mask=mask_m[:, None] & mask_f[None, :], sem="relaxed")
        if KERNEL == 1:
            dk = dk * 2.0  # see kq
    if INTER_GRADS != "dq":
        tl.store(DK + b * sdkb + h * sdkh + rows_n[:, None] * sdkt + offs_f[None, :] * sdkf, dk.to(DK.dtype.element_ty), mask=mask_n[:, None] & mask_f[None, :])
        tl.store(DV + b * sdvb + h * sdvh + rows_n[:, None] * sdvt + offs_d[None, :] * sdvd, dv.to(DV.dtype.element_ty), mask=mask_n[:, None] & mask_d[None, :])
