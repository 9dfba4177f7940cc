"""The chunked (linear-in-T) form of Based / ReBased causal linear attention, in Triton: the inter-chunk part.

The similarity is a dot product of expanded features, A_ij = φq(q_i)·φk(k_j), with feature index e over
    unordered pairs {a, b}, a, b < F:  φq = m_ab c2/F · q_a q_b,  φk = k_a k_b   (c2 = 1/2 based, 1 rebased;
                                        m_ab = 1 on the diagonal a = b, 2 off it: (q·k)² counts q_a q_b k_a k_b twice)
    singles b < F (based):             φq = q_b / √F,              φk = k_b
    the constant (based):              φq = 1,                     φk = 1
so E = F(F+1)/2 (rebased) or F(F+1)/2 + F + 1 (based) features: 136 or 153 at F = 16, against F² = 256 (273) for
ordered pairs, and the states, their prefix sums and the feature loops shrink by as much. The pairs are numbered by
their cyclic distance: e = d·F + a is the pair (a, (a + d) mod F), d = 0 … ⌊F/2⌋; at d = F/2 (F even) only a < F/2,
since (a, a + F/2) and (a + F/2, a) are one pair. Decoding needs no table, and the pairs are contiguous from 0.
Each feature is the product of two entries of q (or k). Both are picked out of the chunk's [C, F] tile, loaded
once, by products with one-hot [F, BE] matrices (tensor-core work, exact: the tile holds input values and the
one-hots are 0/1), so the expansion never reaches memory as a [T, E] tensor. (Indexed loads did the picking
before: 2 · C · BE gathers per feature block, each program and pass.)

Two steps:
1. the prefix states: for each chunk c and block of BE features, the sum over all earlier chunks (or, for the
   backward's reverse direction, all later ones) of Σ_{t∈c} φk(k_t) v_tᵀ [BE, D] and the normaliser Σ_{t∈c} φk(k_t)
   [BE] (fp32), in a buffer of NC + 1 slots whose slot 0 is zero. Either `chunk_scan_kernel`, one sequential pass
   over the chunks per (batch·head, feature block, block of value columns) that keeps the running sum in registers,
   or `chunk_state_kernel`, every chunk's own sums in parallel, one slot along, then a cumulative sum over the
   slots (torch); `STATE_SCAN` in triton_ops picks;
2. the parallel kernels in chunked mode (triton_parallel, INTER) compute the within-chunk tile and add the
   state's contribution through `inter_forward` / `inter_dq` / `inter_dkdv` below, looping over feature blocks.

Backward (g_i = do_i / Z_i, δ_i = g_i·o_i):
    dφq_i = S_i g_i − δ_i z_i                       (S, z: state and normaliser of the chunks before i's)
    dφk_j = R_j v_j − w_j,   dv_j += R_jᵀ φk(k_j)   (R = Σ_{later chunks} φq(q_i) g_iᵀ, w = Σ δ_i φq(q_i))
and the feature Jacobian d(x_a x_b)/dx_m = δ_am x_b + x_a δ_bm maps dφ back to dq, dk: a product with the one-hot
matrices [BE, F] of a(e) and b(e), done as matrix products.
"""
from __future__ import annotations

import os

import triton
import triton.language as tl


@triton.jit
def _feature_index(pid_e, F, KERNEL: tl.constexpr, BE: tl.constexpr, SCALE_F):
    """For features e of this block: the two factor indices (−1 means the factor 1) and φq's coefficient."""
    offs_e = pid_e * BE + tl.arange(0, BE)
    num_pairs = F * (F + 1) // 2
    is_pair = offs_e < num_pairs
    distance = offs_e // F  # pair e = (a, (a + distance) mod F): see the module docstring
    ia = tl.where(is_pair, offs_e % F, -1)
    pair_b = (offs_e % F + distance) % F
    multiplicity = tl.where(distance == 0, 1.0, 2.0)
    if KERNEL == 0:
        is_single = (offs_e >= num_pairs) & (offs_e < num_pairs + F)
        ib = tl.where(is_pair, pair_b, tl.where(is_single, offs_e - num_pairs, -1))
        num_features = num_pairs + F + 1
        coef = tl.where(is_pair, multiplicity * 0.5 / F, tl.where(is_single, SCALE_F, 1.0))
    else:
        ib = tl.where(is_pair, pair_b, -1)
        num_features = num_pairs
        coef = tl.where(is_pair, multiplicity / F, 0.0)
    valid = offs_e < num_features
    coef = tl.where(valid, coef, 0.0)
    return ia, ib, coef, valid


@triton.jit
def _load_rows(base, rows, mask_t, stride_t, stride_f, F, BF: tl.constexpr):
    """The rows' first F entries as an fp32 [C, BF] tile, 0 past F and on rows past T."""
    offs_f = tl.arange(0, BF)
    mask = mask_t[:, None] & (offs_f < F)[None, :]
    return tl.load(base + rows[:, None] * stride_t + offs_f[None, :] * stride_f, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _pick(x, onehot, PRECISION: tl.constexpr):
    """x @ onehot, exactly for half inputs: x holds their values, which tf32 represents exactly (bf16 and fp16 both
    fit its 8-bit exponent and 10-bit mantissa), so one tf32 pass neither rounds nor loses anything. fp32 inputs get
    tf32x3 (≈ fp32). A dot in the input dtype would be as exact and cheaper, but Triton 3.6 miscompiled it on the
    H200 at F = 64 (shared-memory reads out of bounds under compute-sanitizer; NaN grads and illegal accesses)."""
    return tl.dot(x, onehot, input_precision=PRECISION)


@triton.jit
def _factors(x, mask_t, ia, ib, BF: tl.constexpr, PRECISION: tl.constexpr):
    """x_a and x_b for each row of the tile x [C, BF] and each feature: [C, BE] each, 1 where the index is −1,
    0 on rows past T."""
    offs_f = tl.arange(0, BF)
    xa = _pick(x, (offs_f[:, None] == ia[None, :]).to(tl.float32), PRECISION)  # a = −1 picks nothing
    xb = _pick(x, (offs_f[:, None] == ib[None, :]).to(tl.float32), PRECISION)
    xa = tl.where((ia < 0)[None, :] & mask_t[:, None], 1.0, xa)
    xb = tl.where((ib < 0)[None, :] & mask_t[:, None], 1.0, xb)
    return xa, xb


@triton.jit
def _scatter_to_inputs(dphi, xa, xb, ia, ib, BF: tl.constexpr, PRECISION: tl.constexpr):
    """Σ_e dphi[:, e] · d(x_a x_b)/dx_m for m < BF: [C, BE] -> [C, BF] through one-hot matrix products."""
    offs_m = tl.arange(0, BF)
    onehot_a = (ia[:, None] == offs_m[None, :]).to(tl.float32)  # [BE, BF]; a = −1 matches nothing
    onehot_b = (ib[:, None] == offs_m[None, :]).to(tl.float32)
    out = tl.dot(dphi * xb, onehot_a, input_precision=PRECISION)
    out += tl.dot(dphi * xa, onehot_b, input_precision=PRECISION)
    return out


@triton.jit
def _chunk_sums(x_base, y_base, RZ, DELTA, zt_base, chunk, T, F, D, sxt, sxf, syt, syd, offs_d, mask_d,
                ia, ib, coef, valid_e, C: tl.constexpr, BF: tl.constexpr, IS_QUERY: tl.constexpr,
                PRECISION: tl.constexpr):
    """One chunk's own sums for one block of features and the value columns offs_d: [BE, BD] and [BE] fp32.

    Forward (IS_QUERY False): Σ_t φk(k_t) v_tᵀ and Σ_t φk(k_t). Backward (IS_QUERY True): Σ_t φq(q_t) g_tᵀ and
    Σ_t δ_t φq(q_t), with g = do · (1/Z) (1/Z, δ at zt_base + t of [B, H, T] buffers: a multiply, where a
    division per element slowed the scan's backward direction, its loop's [C, D] tile divided each step).
    """
    offs_t = chunk * C + tl.arange(0, C)
    mask_t = offs_t < T
    rows = offs_t.to(tl.int64)
    x = _load_rows(x_base, rows, mask_t, sxt, sxf, F, BF)
    xa, xb = _factors(x, mask_t, ia, ib, BF, PRECISION)
    if IS_QUERY:
        phi = xa * xb * coef[None, :]
    else:
        phi = tl.where(valid_e[None, :], xa * xb, 0.0)
    phi = tl.where(mask_t[:, None], phi, 0.0)  # [C, BE]
    y = tl.load(y_base + rows[:, None] * syt + offs_d[None, :] * syd, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
    if IS_QUERY:
        rz = tl.load(RZ + zt_base + rows, mask=mask_t, other=1.0)
        weight = tl.load(DELTA + zt_base + rows, mask=mask_t, other=0.0)
        y = y * rz[:, None]
    else:
        weight = tl.where(mask_t, 1.0, 0.0)
    state = tl.dot(tl.trans(phi), y, input_precision=PRECISION)  # [BE, BD]
    vec = tl.sum(phi * weight[:, None], axis=0)  # [BE]
    return state, vec


@triton.jit
def chunk_state_kernel(
    X, Y, RZ, DELTA, STATE, VEC,  # X: k (or q), Y: v (or do) [B, T, H, *]; 1/z, δ [B, H, T] fp32 (IS_QUERY)
    sxb, sxt, sxh, sxf,
    syb, syt, syh, syd,
    T, H, F, D, scale_f,
    KERNEL: tl.constexpr, C: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    IS_QUERY: tl.constexpr, PRECISION: tl.constexpr,
):
    """One chunk's state into its slot of STATE [B·H, NC + 1, E_PAD, D] and VEC [B·H, NC + 1, E_PAD]; a cumulative
    sum over the slots (torch) then makes them prefix sums.

    Forward (IS_QUERY False): the chunk's Σ φk(k_t) v_tᵀ and Σ φk(k_t), into slot c + 1.
    Backward (IS_QUERY True): its Σ φq(q_t) g_tᵀ and Σ δ_t φq(q_t) with g = do / Z, into slot NC − c (reverse order).
    """
    pid_bh = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1)
    pid_e = tl.program_id(2)
    b = pid_bh // H
    h = pid_bh % H
    ia, ib, coef, valid_e = _feature_index(pid_e, F, KERNEL, BE, scale_f)
    offs_d = tl.arange(0, BD)
    mask_d = offs_d < D
    state, vec = _chunk_sums(X + b * sxb + h * sxh, Y + b * syb + h * syh, RZ, DELTA, pid_bh * T, pid_c, T, F, D,
                             sxt, sxf, syt, syd, offs_d, mask_d, ia, ib, coef, valid_e, C, BF, IS_QUERY, PRECISION)

    num_chunks = tl.cdiv(T, C)
    if IS_QUERY:
        slot = num_chunks - pid_c
    else:
        slot = pid_c + 1
    e_pad = tl.num_programs(2) * BE
    slot_base = (pid_bh * (num_chunks + 1) + slot) * e_pad
    offs_e = pid_e * BE + tl.arange(0, BE)
    tl.store(STATE + (slot_base + offs_e)[:, None] * D + offs_d[None, :], state, mask=mask_d[None, :])
    tl.store(VEC + slot_base + offs_e, vec)


@triton.jit
def chunk_scan_kernel(
    X, Y, RZ, DELTA, STATE, VEC,  # as chunk_state_kernel's
    sxb, sxt, sxh, sxf,
    syb, syt, syh, syd,
    T, H, F, D, scale_f,
    KERNEL: tl.constexpr, C: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    IS_QUERY: tl.constexpr, PRECISION: tl.constexpr,
):
    """The prefix states themselves, without the cumulative sum: one program per (batch·head, feature block, block
    of BD value columns) walks the chunks in order (reverse order for the backward), adds each chunk's own sums to
    a running total in registers and stores the total into the chunk's slot: slot i + 1 after the i-th chunk
    walked, as chunk_state_kernel + cumsum leave it (slot 0 is zeroed by the caller). The local states never reach
    memory, and no cumsum reads and rewrites the buffer; the price is a sequential loop over the chunks."""
    pid_bh = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    pid_d = tl.program_id(2)
    b = pid_bh // H
    h = pid_bh % H
    ia, ib, coef, valid_e = _feature_index(pid_e, F, KERNEL, BE, scale_f)
    offs_d = pid_d * BD + tl.arange(0, BD)
    mask_d = offs_d < D
    x_base = X + b * sxb + h * sxh
    y_base = Y + b * syb + h * syh
    num_chunks = tl.cdiv(T, C)
    e_pad = tl.num_programs(1) * BE
    offs_e = pid_e * BE + tl.arange(0, BE)
    state = tl.zeros([BE, BD], dtype=tl.float32)
    vec = tl.zeros([BE], dtype=tl.float32)
    for i in range(0, num_chunks):
        if IS_QUERY:
            chunk = num_chunks - 1 - i
        else:
            chunk = i
        chunk_state, chunk_vec = _chunk_sums(x_base, y_base, RZ, DELTA, pid_bh * T, chunk, T, F, D, sxt, sxf, syt,
                                             syd, offs_d, mask_d, ia, ib, coef, valid_e, C, BF, IS_QUERY, PRECISION)
        state += chunk_state
        vec += chunk_vec
        slot_base = (pid_bh * (num_chunks + 1) + i + 1) * e_pad
        tl.store(STATE + (slot_base + offs_e)[:, None] * D + offs_d[None, :], state, mask=mask_d[None, :])
        if pid_d == 0:  # every value block computes the normaliser; one stores it
            tl.store(VEC + slot_base + offs_e, vec)


@triton.jit
def inter_forward(acc, z, q, mask_t, STATE, VEC, slot, F, D, offs_d, mask_d, NUM_EB, scale_f,
                  KERNEL: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr, PRECISION: tl.constexpr):
    """acc += φq(Q_c) S_c, z += φq(Q_c)·z_c over all feature blocks (S_c, z_c in `slot`; q: the chunk's fp32
    [C, BF] tile)."""
    slot_base = slot * (NUM_EB * BE)
    for eb in range(0, NUM_EB):
        ia, ib, coef, valid_e = _feature_index(eb, F, KERNEL, BE, scale_f)
        qa, qb = _factors(q, mask_t, ia, ib, BF, PRECISION)
        phi = qa * qb * coef[None, :]  # [C, BE]
        offs_e = eb * BE + tl.arange(0, BE)
        state = tl.load(STATE + (slot_base + offs_e)[:, None] * D + offs_d[None, :], mask=mask_d[None, :], other=0.0)
        norm = tl.load(VEC + slot_base + offs_e)
        acc += tl.dot(phi, state, input_precision=PRECISION)
        z += tl.sum(phi * norm[None, :], axis=1)
    return acc, z


# The GPU splits fp32 into tf32 hi + lo with the instruction Triton's own tf32x3 uses; the interpreter, which runs
# no inline asm, with the same rounding done on the bits.
_TF32_CVT_ASM = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") != "1")


@triton.jit
def _tf32_split(x, CVT_ASM: tl.constexpr = _TF32_CVT_ASM):
    """x = hi + lo, hi = x rounded to tf32 (10 mantissa bits) to nearest, ties away from zero, lo = x − hi (exact
    while hi is finite): tf32x3's split in Triton 3.6 (cvt.rna.tf32.f32, then a subtraction; the MMA then reads
    lo's top 19 bits). CVT_ASM False: the same rounding on the bits (+ half a tf32 ulp, clear the 13 low bits), NaN
    kept NaN (the carry could turn a NaN's low payload into an infinity); the interpreter's way, and tested."""
    if CVT_ASM:
        hi = tl.inline_asm_elementwise("cvt.rna.tf32.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True,
                                       pack=1)
    else:
        bits = x.to(tl.uint32, bitcast=True)
        hi = ((bits + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)
        hi = tl.where(x == x, hi, x)
    return hi, x - hi


@triton.jit
def _dot_exact_lhs(a, b):
    """a @ b ≈ fp32 in two tf32 MMAs, for fp32 a whose every entry is exact in tf32 (here: a half-precision input
    tile, bf16 or fp16, converted to fp32) and any fp32 b: a · b_lo then a · b_hi on top.

    tf32x3 on such an a splits it too, into a and a zero lo half, and spends its first MMA on that zero half (the
    all-zero [C, BD] fp32 tile is formed once, before the state loop). Its other two MMAs are these
    two, in this order (lo first, then hi accumulated onto it), with the same hi / lo of b: the result is the same
    up to tf32x3's NaN → 0 guard between its second and third MMA and an added +0 (−0 becomes +0)."""
    b_hi, b_lo = _tf32_split(b)
    return tl.dot(a, b_hi, tl.dot(a, b_lo, input_precision="tf32"), input_precision="tf32")


@triton.jit
def inter_dq(dq, g, do, rz, delta, q, mask_t, STATE, VEC, slot, F, D, offs_d, mask_d, NUM_EB, scale_f,
             KERNEL: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr,
             PRECISION: tl.constexpr, PRECISE: tl.constexpr, TWO_MMA: tl.constexpr):
    """dq [C, BF] fp32 plus its part from the earlier chunks' state: dφq = g Sᵀ − δ zᵀ, through the feature
    Jacobian (q: the chunk's fp32 [C, BF] tile).

    g Sᵀ (g = do / Z) must be ≈ fp32. TWO_MMA False: tf32x3 on g and S (3 MMAs). TWO_MMA True, for half inputs
    only: (do Sᵀ) / Z row by row, do [C, BD] fp32 holding the half-precision do (exact in tf32), rz = 1 / Z [C]:
    S split into tf32 hi + lo, 2 MMAs (_dot_exact_lhs). Not bit-identical to tf32x3 on g (g is do · rz rounded to
    fp32, then its hi and lo halves; here do is exact and rz is applied to the product): they differ by fp32-level
    rounding, each as close to the exact g Sᵀ as the other."""
    slot_base = slot * (NUM_EB * BE)
    for eb in range(0, NUM_EB):
        ia, ib, coef, valid_e = _feature_index(eb, F, KERNEL, BE, scale_f)
        offs_e = eb * BE + tl.arange(0, BE)
        state = tl.load(STATE + (slot_base + offs_e)[:, None] * D + offs_d[None, :], mask=mask_d[None, :], other=0.0)
        norm = tl.load(VEC + slot_base + offs_e)
        if TWO_MMA:
            gs = _dot_exact_lhs(do, tl.trans(state)) * rz[:, None]
        else:
            gs = tl.dot(g, tl.trans(state), input_precision=PRECISE)
        dphi = gs - delta[:, None] * norm[None, :]  # [C, BE]
        dphi = dphi * coef[None, :]
        qa, qb = _factors(q, mask_t, ia, ib, BF, PRECISION)
        dq += _scatter_to_inputs(dphi, qa, qb, ia, ib, BF, PRECISION)
    return dq


@triton.jit
def inter_dkdv(dk, dv, v, k, mask_t, RSTATE, WVEC, slot, F, D, offs_d, mask_d, NUM_EB, scale_f,
               KERNEL: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr,
               PRECISION: tl.constexpr, PRECISE: tl.constexpr, TWO_MMA: tl.constexpr):
    """dk [C, BF] and dv [C, BD] plus the later chunks' part from R = Σ φq gᵀ and w = Σ δ φq: dv += φk R,
    dφk = v Rᵀ − w. v: [C, BD] fp32, k: the chunk's fp32 [C, BF] tile.

    v Rᵀ must be ≈ fp32. TWO_MMA False: tf32x3 (3 MMAs). TWO_MMA True, for half inputs only (v exact in tf32):
    R split into tf32 hi + lo, 2 MMAs (_dot_exact_lhs), the same two products tf32x3 makes in the same order, so
    the same result for finite values (see there; bit-identical dk, dv in the GPU test
    test_two_mma_state_products_match_tf32x3). fp32 inputs' v is not exact: False."""
    slot_base = slot * (NUM_EB * BE)
    for eb in range(0, NUM_EB):
        ia, ib, coef, valid_e = _feature_index(eb, F, KERNEL, BE, scale_f)
        ka, kb = _factors(k, mask_t, ia, ib, BF, PRECISION)
        keep = valid_e[None, :] & mask_t[:, None]
        phi = tl.where(keep, ka * kb, 0.0)  # [C, BE]
        offs_e = eb * BE + tl.arange(0, BE)
        rstate = tl.load(RSTATE + (slot_base + offs_e)[:, None] * D + offs_d[None, :], mask=mask_d[None, :], other=0.0)
        wvec = tl.load(WVEC + slot_base + offs_e)
        dv += tl.dot(phi, rstate, input_precision=PRECISION)
        if TWO_MMA:
            vr = _dot_exact_lhs(v, tl.trans(rstate))
        else:
            vr = tl.dot(v, tl.trans(rstate), input_precision=PRECISE)
        dphi = tl.where(keep, vr - wvec[None, :], 0.0)
        dk += _scatter_to_inputs(dphi, ka, kb, ia, ib, BF, PRECISION)
    return dk, dv
