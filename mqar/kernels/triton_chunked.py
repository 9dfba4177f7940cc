"""The chunked (linear-in-T) form of Based / ReBased causal linear attention, in Triton: the inter-chunk part.

The similarity is a dot product of expanded features, A_ij = φq(q_i)·φk(k_j), with feature index e over
    pairs (a, b), a, b < F:  φq = c2/F · q_a q_b,   φk = k_a k_b        (c2 = 1/2 based, 1 rebased)
    singles b < F (based):   φq = q_b / √F,          φk = k_b
    the constant (based):    φq = 1,                 φk = 1
so E = F² (rebased) or F² + F + 1 (based) features. A program owns one block of BE features of one batch·head
and scans the chunks in order, holding its slice of the state S = Σ_{past} φk(k_j) v_jᵀ [BE, D] and of the
normaliser z = Σ_{past} φk(k_j) [BE] in registers (fp32). Each feature is the product of two entries of q (or
k), fetched by indexed loads, so the F² expansion never reaches memory. The feature blocks' partial results are
summed with atomic adds into fp32 buffers; the parallel kernels in DIAG_ONLY mode then add the intra-chunk part,
divide and store (see triton_parallel).

Backward (g_i = do_i / Z_i, δ_i = g_i·o_i):
    dφq_i = S_i g_i − δ_i z_i                       (forward scan, state of chunks before i's chunk)
    dφk_j = R_j v_j − w_j,   dv_j += R_jᵀ φk(k_j)   (reverse scan, R = Σ_{later} φq(q_i) g_iᵀ, w = Σ δ_i φq(q_i))
and the feature Jacobian d(x_a x_b)/dx_m = δ_am x_b + x_a δ_bm maps dφ back to dq, dk: a product with the one-hot
matrices [BE, F] of a(e) and b(e), done as matrix products.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _feature_index(pid_e, F, KERNEL: tl.constexpr, BE: tl.constexpr, SCALE_F):
    """For features e of this block: the two factor indices (−1 means the factor 1) and φq's coefficient."""
    offs_e = pid_e * BE + tl.arange(0, BE)
    num_pairs = F * F
    is_pair = offs_e < num_pairs
    ia = tl.where(is_pair, offs_e // F, -1)
    if KERNEL == 0:
        is_single = (offs_e >= num_pairs) & (offs_e < num_pairs + F)
        ib = tl.where(is_pair, offs_e % F, tl.where(is_single, offs_e - num_pairs, -1))
        num_features = num_pairs + F + 1
        coef = tl.where(is_pair, 0.5 / F, tl.where(is_single, SCALE_F, 1.0))
    else:
        ib = tl.where(is_pair, offs_e % F, -1)
        num_features = num_pairs
        coef = tl.where(is_pair, 1.0 / F, 0.0)
    valid = offs_e < num_features
    coef = tl.where(valid, coef, 0.0)
    return ia, ib, coef, valid


@triton.jit
def _factors(base, rows, mask_t, stride_t, stride_f, ia, ib):
    """x_a and x_b for each row and feature: [C, BE] each, 1 where the index is −1, 0 on rows past T."""
    row_off = rows[:, None] * stride_t
    xa = tl.load(base + row_off + ia[None, :] * stride_f, mask=mask_t[:, None] & (ia >= 0)[None, :], other=0.0).to(tl.float32)
    xb = tl.load(base + row_off + ib[None, :] * stride_f, mask=mask_t[:, None] & (ib >= 0)[None, :], other=0.0).to(tl.float32)
    xa = tl.where((ia < 0)[None, :] & mask_t[:, None], 1.0, xa)
    xb = tl.where((ib < 0)[None, :] & mask_t[:, None], 1.0, xb)
    return xa, xb


@triton.jit
def chunked_fwd_inter_kernel(
    Q, K, V, NX, ZX,  # q, k [B, T, H, F]; v [B, T, H, D]; nx [B, H, T, D], zx [B, H, T] fp32 (atomic sums)
    sqb, sqt, sqh, sqf,
    skb, skt, skh, skf,
    svb, svt, svh, svd,
    T, H, F, D, scale_f,
    KERNEL: tl.constexpr, C: tl.constexpr, BE: tl.constexpr, BD: tl.constexpr, PRECISION: tl.constexpr,
):
    pid_e = tl.program_id(1)
    pid_bh = tl.program_id(0).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    ia, ib, coef, valid_e = _feature_index(pid_e, F, KERNEL, BE, scale_f)
    offs_d = tl.arange(0, BD)
    mask_d = offs_d < D

    state = tl.zeros([BE, BD], dtype=tl.float32)  # Σ_{past} φk(k_j) v_jᵀ, this block's features
    norm = tl.zeros([BE], dtype=tl.float32)  # Σ_{past} φk(k_j)
    for start in range(0, T, C):
        offs_t = start + tl.arange(0, C)
        mask_t = offs_t < T
        rows = offs_t.to(tl.int64)
        if start > 0:  # the first chunk has no past
            qa, qb = _factors(q_base, rows, mask_t, sqt, sqf, ia, ib)
            phi_q = qa * qb * coef[None, :]  # [C, BE]
            num = tl.dot(phi_q, state, input_precision=PRECISION)  # [C, BD]
            den = tl.sum(phi_q * norm[None, :], axis=1)  # [C]
            tl.atomic_add(NX + (pid_bh * T + rows)[:, None] * D + offs_d[None, :], num, mask=mask_t[:, None] & mask_d[None, :], sem="relaxed")
            tl.atomic_add(ZX + pid_bh * T + rows, den, mask=mask_t, sem="relaxed")
        ka, kb = _factors(k_base, rows, mask_t, skt, skf, ia, ib)
        phi_k = tl.where(valid_e[None, :], ka * kb, 0.0)  # [C, BE]
        v = tl.load(v_base + rows[:, None] * svt + offs_d[None, :] * svd, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        state += tl.dot(tl.trans(phi_k), v, input_precision=PRECISION)
        norm += tl.sum(phi_k, axis=0)


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
def chunked_bwd_dq_inter_kernel(
    Q, K, V, DO, Z, DELTA, DQX,  # z, delta [B, H, T] fp32; dqx [B, H, T, F] fp32 (atomic sums)
    sqb, sqt, sqh, sqf,
    skb, skt, skh, skf,
    svb, svt, svh, svd,
    sdob, sdot, sdoh, sdod,
    T, H, F, D, scale_f,
    KERNEL: tl.constexpr, C: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_e = tl.program_id(1)
    pid_bh = tl.program_id(0).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    do_base = DO + b * sdob + h * sdoh
    ia, ib, coef, valid_e = _feature_index(pid_e, F, KERNEL, BE, scale_f)
    offs_d = tl.arange(0, BD)
    offs_f = tl.arange(0, BF)
    mask_d = offs_d < D
    mask_f = offs_f < F

    state = tl.zeros([BE, BD], dtype=tl.float32)
    norm = tl.zeros([BE], dtype=tl.float32)
    for start in range(0, T, C):
        offs_t = start + tl.arange(0, C)
        mask_t = offs_t < T
        rows = offs_t.to(tl.int64)
        if start > 0:
            do = tl.load(do_base + rows[:, None] * sdot + offs_d[None, :] * sdod, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
            zi = tl.load(Z + pid_bh * T + rows, mask=mask_t, other=1.0)
            delta = tl.load(DELTA + pid_bh * T + rows, mask=mask_t, other=0.0)
            g = do / zi[:, None]  # [C, BD]
            dphi = tl.dot(g, tl.trans(state), input_precision=PRECISION) - delta[:, None] * norm[None, :]  # [C, BE]
            dphi = dphi * coef[None, :]
            qa, qb = _factors(q_base, rows, mask_t, sqt, sqf, ia, ib)
            dq = _scatter_to_inputs(dphi, qa, qb, ia, ib, BF, PRECISION)  # [C, BF]
            tl.atomic_add(DQX + (pid_bh * T + rows)[:, None] * F + offs_f[None, :], dq, mask=mask_t[:, None] & mask_f[None, :], sem="relaxed")
        ka, kb = _factors(k_base, rows, mask_t, skt, skf, ia, ib)
        phi_k = tl.where(valid_e[None, :], ka * kb, 0.0)
        v = tl.load(v_base + rows[:, None] * svt + offs_d[None, :] * svd, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        state += tl.dot(tl.trans(phi_k), v, input_precision=PRECISION)
        norm += tl.sum(phi_k, axis=0)


@triton.jit
def chunked_bwd_dkdv_inter_kernel(
    Q, K, V, DO, Z, DELTA, DKX, DVX,  # dkx [B, H, T, F], dvx [B, H, T, D] fp32 (atomic sums)
    sqb, sqt, sqh, sqf,
    skb, skt, skh, skf,
    svb, svt, svh, svd,
    sdob, sdot, sdoh, sdod,
    T, H, F, D, scale_f,
    KERNEL: tl.constexpr, C: tl.constexpr, BE: tl.constexpr, BF: tl.constexpr, BD: tl.constexpr,
    PRECISION: tl.constexpr,
):
    pid_e = tl.program_id(1)
    pid_bh = tl.program_id(0).to(tl.int64)
    b = pid_bh // H
    h = pid_bh % H
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    do_base = DO + b * sdob + h * sdoh
    ia, ib, coef, valid_e = _feature_index(pid_e, F, KERNEL, BE, scale_f)
    offs_d = tl.arange(0, BD)
    offs_f = tl.arange(0, BF)
    mask_d = offs_d < D
    mask_f = offs_f < F

    rstate = tl.zeros([BE, BD], dtype=tl.float32)  # Σ_{later} φq(q_i) g_iᵀ
    wsum = tl.zeros([BE], dtype=tl.float32)  # Σ_{later} δ_i φq(q_i)
    num_chunks = tl.cdiv(T, C)
    for c in range(0, num_chunks):
        start = (num_chunks - 1 - c) * C  # reverse scan
        offs_t = start + tl.arange(0, C)
        mask_t = offs_t < T
        rows = offs_t.to(tl.int64)
        if c > 0:  # the last chunk has no future
            ka, kb = _factors(k_base, rows, mask_t, skt, skf, ia, ib)
            phi_k = tl.where(valid_e[None, :], ka * kb, 0.0)
            v = tl.load(v_base + rows[:, None] * svt + offs_d[None, :] * svd, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
            dv = tl.dot(phi_k, rstate, input_precision=PRECISION)  # [C, BD]
            dphi = tl.dot(v, tl.trans(rstate), input_precision=PRECISION) - wsum[None, :]  # [C, BE]
            dphi = tl.where(valid_e[None, :] & mask_t[:, None], dphi, 0.0)
            dk = _scatter_to_inputs(dphi, ka, kb, ia, ib, BF, PRECISION)
            tl.atomic_add(DVX + (pid_bh * T + rows)[:, None] * D + offs_d[None, :], dv, mask=mask_t[:, None] & mask_d[None, :], sem="relaxed")
            tl.atomic_add(DKX + (pid_bh * T + rows)[:, None] * F + offs_f[None, :], dk, mask=mask_t[:, None] & mask_f[None, :], sem="relaxed")
        qa, qb = _factors(q_base, rows, mask_t, sqt, sqf, ia, ib)
        phi_q = qa * qb * coef[None, :]  # zero on rows past T (factors are 0 there, or coef·1·1 → masked below)
        phi_q = tl.where(mask_t[:, None], phi_q, 0.0)
        do = tl.load(do_base + rows[:, None] * sdot + offs_d[None, :] * sdod, mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        zi = tl.load(Z + pid_bh * T + rows, mask=mask_t, other=1.0)
        delta = tl.load(DELTA + pid_bh * T + rows, mask=mask_t, other=0.0)
        g = do / zi[:, None]
        rstate += tl.dot(tl.trans(phi_q), g, input_precision=PRECISION)
        wsum += tl.sum(phi_q * delta[:, None], axis=0)
