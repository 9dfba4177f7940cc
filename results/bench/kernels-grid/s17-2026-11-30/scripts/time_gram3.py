"""Session 17, call 4: the per-key-block Gram kernel with the heads of one key block in neighbouring programs.
k is [B, T, H, F]: a head's 16-wide row is 32 bytes of a 384-byte row of all 12 heads. Session 16's key_gram_kernel
numbers its programs head by head (slot = batch·head·NB + block), so the 12 programs that read the same rows run
far apart; here program p takes head p % H of (batch, block) p // H, and writes the same slots.
cases: old (@15cdfc5 + torch cumsum); heads-adjacent + torch cumsum; heads-adjacent + the Triton scan of call 3;
loop: one program per (batch, block) walking the H heads, + the Triton scan. µs per build (do_bench median and
back to back), each checked against old.
usage (PYTHONPATH = repository root): python time_gram3.py"""
import json

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

from mqar.kernels.triton_parallel import _exact_dot
from time_gram import old_grams
from time_gram2 import gram_scan_kernel


@triton.jit
def adjacent_gram_kernel(K, GRAM, skb, skt, skh, skf, T, H, F, BN: tl.constexpr, BF: tl.constexpr,
                         HEADS_LOOP: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    num_blocks = tl.cdiv(T, BN)
    if HEADS_LOOP:
        row_block = pid
        first_head = 0
        heads = H
    else:
        row_block = pid // H
        first_head = pid % H
        heads = 1
    b = row_block // num_blocks
    block = row_block % num_blocks
    offs_n = block.to(tl.int32) * BN + tl.arange(0, BN)
    offs_f = tl.arange(0, BF)
    for i in range(0, heads):
        h = first_head + i
        k_ptrs = K + b * skb + h * skh + offs_n.to(tl.int64)[:, None] * skt + offs_f[None, :] * skf
        k = tl.load(k_ptrs, mask=(offs_n < T)[:, None] & (offs_f < F)[None, :], other=0.0)
        gram = _exact_dot(tl.trans(k), k, tl.zeros([BF, BF], dtype=tl.float32), tl.bfloat16, "tf32x3")
        slot = (b * H + h) * num_blocks + block
        tl.store(GRAM + slot * BF * BF + offs_f[:, None] * BF + offs_f[None, :], gram)


def adjacent_grams(k, block_n, block_f, scan, heads_loop=False, warps=1):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    grid = batch * blocks * (1 if heads_loop else heads)
    adjacent_gram_kernel[(grid,)](k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n, BF=block_f,
                                  HEADS_LOOP=heads_loop, num_warps=warps)
    if scan:
        gram_scan_kernel[(batch * heads, block_f * block_f // 64)](grams, blocks, NBP=triton.next_power_of_2(blocks),
                                                                   BF2=block_f * block_f, COLS=64, num_warps=2)
        return grams
    return grams.cumsum_(1)


def back_to_back(build):
    for _ in range(5):
        build()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(50):
        build()
    end.record()
    torch.cuda.synchronize()
    return 1e3 * start.elapsed_time(end) / 50


if __name__ == "__main__":
    for B, T, H in [(256, 512, 12), (128, 1024, 12), (64, 2048, 12), (48, 3072, 12)]:
        k = torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16)
        reference = old_grams(k, 64, 16)
        scale = reference.abs().max().item()
        cases = {"old": lambda: old_grams(k, 64, 16)}
        for warps in (1, 2):
            cases[f"adjacent w{warps} + cumsum"] = lambda warps=warps: adjacent_grams(k, 64, 16, False, warps=warps)
            cases[f"adjacent w{warps} + scan"] = lambda warps=warps: adjacent_grams(k, 64, 16, True, warps=warps)
            cases[f"heads loop w{warps} + scan"] = lambda warps=warps: adjacent_grams(k, 64, 16, True, True, warps)
        for name, build in cases.items():
            row = {"shape": [B, T, H], "case": name}
            try:
                row["rel_diff"] = (build() - reference).abs().max().item() / scale
                row["us"] = 1e3 * do_bench(build, rep=100)
                row["us_back_to_back"] = back_to_back(build)
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            print(json.dumps(row), flush=True)
