"""Session 17: the keys' prefix Gram matrices (FWD_GRAM) built two ways, on the GPU.
old: session 16's main (one program per key block, key_gram_kernel@15cdfc5, copied below, then torch's cumsum);
new: this tree's key_gram_kernel (one program per head, STEP key blocks per step), at several STEP / warps / stages.
Checks new == old (max abs difference relative to max |G|) and prints µs per build (do_bench median), as JSON lines.
usage (PYTHONPATH = repository root): python time_gram.py"""
import json

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_parallel import _exact_dot


@triton.jit
def old_key_gram_kernel(K, GRAM, skb, skt, skh, skf, T, H, F, BN: tl.constexpr, BF: tl.constexpr,
                        DOT_DTYPE: tl.constexpr, PRECISE: tl.constexpr):
    slot = tl.program_id(0).to(tl.int64)
    num_blocks = tl.cdiv(T, BN)
    pid_bh = slot // num_blocks
    offs_n = (slot % num_blocks).to(tl.int32) * BN + tl.arange(0, BN)
    offs_f = tl.arange(0, BF)
    k_ptrs = K + (pid_bh // H) * skb + (pid_bh % H) * skh + offs_n.to(tl.int64)[:, None] * skt + offs_f[None, :] * skf
    k = tl.load(k_ptrs, mask=(offs_n < T)[:, None] & (offs_f < F)[None, :], other=0.0).to(DOT_DTYPE)
    gram = _exact_dot(tl.trans(k), k, tl.zeros([BF, BF], dtype=tl.float32), DOT_DTYPE, PRECISE)
    tl.store(GRAM + slot * BF * BF + offs_f[:, None] * BF + offs_f[None, :], gram)


def old_grams(k, block_n, block_f):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    old_key_gram_kernel[(batch * heads * blocks,)](k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n,
                                                   BF=block_f, DOT_DTYPE=tl.bfloat16, PRECISE="tf32x3", num_warps=1)
    return grams.cumsum_(1)


def new_grams(k, block_n, block_f, step, warps, stages):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    ops.key_gram_kernel[(batch * heads,)](k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n, BF=block_f,
                                          STEP=step, DOT_DTYPE=tl.bfloat16, PRECISE="tf32x3", num_warps=warps,
                                          num_stages=stages)
    return grams


if __name__ == "__main__":
    for B, T, H in [(256, 512, 12), (128, 1024, 12), (64, 2048, 12), (48, 3072, 12)]:
        k = torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16)
        reference = old_grams(k, 64, 16)
        scale = reference.abs().max().item()
        print(json.dumps({"shape": [B, T, H], "case": "old", "us": 1e3 * do_bench(lambda: old_grams(k, 64, 16), rep=100)}), flush=True)
        print(json.dumps({"shape": [B, T, H], "case": "main default", "us": 1e3 * do_bench(lambda: ops._key_grams(k, 64, 16), rep=100)}), flush=True)
        for step in (4, 8, 16):
            for warps in (2, 4, 8):
                for stages in (1, 2, 3):
                    row = {"shape": [B, T, H], "case": f"step{step} w{warps} s{stages}"}
                    try:
                        diff = (new_grams(k, 64, 16, step, warps, stages) - reference).abs().max().item() / scale
                        row["rel_diff"] = diff
                        row["us"] = 1e3 * do_bench(lambda: new_grams(k, 64, 16, step, warps, stages), rep=100)
                    except Exception as error:
                        row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
                    print(json.dumps(row), flush=True)
