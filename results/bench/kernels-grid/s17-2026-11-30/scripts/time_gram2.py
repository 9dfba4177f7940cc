"""Session 17, call 3: two more ways to build the keys' prefix Gram matrices (FWD_GRAM), against call 2's.
old:    session 16's main: one program per key block (key_gram_kernel@15cdfc5), then torch's cumsum over the blocks;
batched: call 2's tree (this tree's key_gram_kernel): one program per head, STEP blocks per step as one batched
        dot + a cumsum over the STEP axis (its best, STEP 4, 2 warps, 2 stages);
masked: one program per head, STEP blocks per step, each prefix as its own 2-D dot of the step's keys masked to the
        rows before the block's end, accumulated onto the carry (no reshape, no cumsum);
scan:   old's per-block kernel, then a Triton scan kernel instead of torch's cumsum (one program per head and COLS
        of G's BF² entries: load [NB, COLS] at once, cumsum over the blocks, store).
Every variant is checked against old (max abs difference relative to max |G|); µs per build, do_bench median.
usage (PYTHONPATH = repository root): python time_gram2.py"""
import json

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from time_gram import new_grams, old_grams, old_key_gram_kernel


@triton.jit
def masked_gram_kernel(K, GRAM, skb, skt, skh, skf, T, H, F, BN: tl.constexpr, BF: tl.constexpr,
                       STEP: tl.constexpr):
    pid_bh = tl.program_id(0).to(tl.int64)
    num_blocks = tl.cdiv(T, BN)
    k_base = K + (pid_bh // H) * skb + (pid_bh % H) * skh
    gram_base = GRAM + pid_bh * num_blocks * (BF * BF)
    offs_n = tl.arange(0, STEP * BN)
    offs_f = tl.arange(0, BF)
    offs_g = offs_f[:, None] * BF + offs_f[None, :]
    carry = tl.zeros([BF, BF], dtype=tl.float32)
    for step in range(0, tl.cdiv(num_blocks, STEP)):
        rows = step * (STEP * BN) + offs_n
        k = tl.load(k_base + rows.to(tl.int64)[:, None] * skt + offs_f[None, :] * skf,
                    mask=(rows < T)[:, None] & (offs_f < F)[None, :], other=0.0)
        kt = tl.trans(k)
        for j in tl.static_range(STEP):
            block = step * STEP + j
            prefix = tl.dot(kt, tl.where((offs_n < (j + 1) * BN)[:, None], k, 0.0), carry)
            tl.store(gram_base + block * (BF * BF) + offs_g, prefix, mask=block < num_blocks)
            if j == STEP - 1:
                carry = prefix


@triton.jit
def gram_scan_kernel(GRAM, NB, NBP: tl.constexpr, BF2: tl.constexpr, COLS: tl.constexpr):
    pid_bh = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * COLS + tl.arange(0, COLS)
    blocks = tl.arange(0, NBP)
    ptrs = GRAM + pid_bh * NB * BF2 + blocks[:, None] * BF2 + cols[None, :]
    mask = (blocks < NB)[:, None]
    tl.store(ptrs, tl.cumsum(tl.load(ptrs, mask=mask, other=0.0), axis=0), mask=mask)


def masked_grams(k, block_n, block_f, step, warps, stages):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    masked_gram_kernel[(batch * heads,)](k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n, BF=block_f,
                                         STEP=step, num_warps=warps, num_stages=stages)
    return grams


def scan_grams(k, block_n, block_f, cols, warps):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    old_key_gram_kernel[(batch * heads * blocks,)](k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n,
                                                   BF=block_f, DOT_DTYPE=tl.bfloat16, PRECISE="tf32x3", num_warps=1)
    gram_scan_kernel[(batch * heads, block_f * block_f // cols)](grams, blocks, NBP=triton.next_power_of_2(blocks),
                                                                 BF2=block_f * block_f, COLS=cols, num_warps=warps)
    return grams


if __name__ == "__main__":
    for B, T, H in [(256, 512, 12), (128, 1024, 12), (64, 2048, 12), (48, 3072, 12)]:
        k = torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16)
        reference = old_grams(k, 64, 16)
        scale = reference.abs().max().item()
        cases = {"old": lambda: old_grams(k, 64, 16), "batched step4 w2 s2": lambda: new_grams(k, 64, 16, 4, 2, 2)}
        for step in (2, 4, 8):
            for warps in (1, 2, 4):
                for stages in (1, 2):
                    cases[f"masked step{step} w{warps} s{stages}"] = (
                        lambda step=step, warps=warps, stages=stages: masked_grams(k, 64, 16, step, warps, stages))
        for cols in (32, 64, 128, 256):
            for warps in (1, 2, 4, 8):
                cases[f"scan cols{cols} w{warps}"] = lambda cols=cols, warps=warps: scan_grams(k, 64, 16, cols, warps)
        for name, build in cases.items():
            row = {"shape": [B, T, H], "case": name}
            try:
                row["rel_diff"] = (build() - reference).abs().max().item() / scale
                row["us"] = 1e3 * do_bench(build, rep=100)
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            print(json.dumps(row), flush=True)
        # the same builds without do_bench's L2 flush between calls: back to back, as the forward sees them
        for name in ("old", "batched step4 w2 s2", "masked step4 w2 s1", "scan cols64 w2"):
            build = cases[name]
            for _ in range(5):
                build()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(50):
                build()
            end.record()
            torch.cuda.synchronize()
            print(json.dumps({"shape": [B, T, H], "case": name + " (back to back)", "us": 1e3 * start.elapsed_time(end) / 50}), flush=True)
