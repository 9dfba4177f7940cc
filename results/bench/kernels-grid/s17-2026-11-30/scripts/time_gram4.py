"""Session 17, call 5: the lower bound of a two-level Gram build. Pass 1 alone: one program per (batch·head, group of
S key blocks), all in parallel, each writing its blocks' prefix sums within the group (masked 2-D dots as call 3's
"masked", or one batched dot + a cumsum over the group as call 2's kernel), no carry between groups. (A full build
would add the groups' running offsets: a small scan over cdiv(NB, S) group totals.) µs, do_bench median and back to
back, against old (session 16's per-block kernel + torch cumsum), and the DRAM bytes each moves.
usage (PYTHONPATH = repository root): python time_gram4.py"""
import json

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

from mqar.kernels.triton_parallel import _exact_dot
from time_gram import old_grams
from time_gram3 import back_to_back


@triton.jit
def grouped_gram_kernel(K, GRAM, skb, skt, skh, skf, T, H, F, BN: tl.constexpr, BF: tl.constexpr, S: tl.constexpr,
                        BATCHED: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    num_blocks = tl.cdiv(T, BN)
    num_groups = tl.cdiv(num_blocks, S)
    pid_bh = pid // num_groups
    group = pid % num_groups
    k_base = K + (pid_bh // H) * skb + (pid_bh % H) * skh
    gram_base = GRAM + pid_bh * num_blocks * (BF * BF)
    offs_n = tl.arange(0, S * BN)
    offs_f = tl.arange(0, BF)
    rows = group * (S * BN) + offs_n
    k = tl.load(k_base + rows.to(tl.int64)[:, None] * skt + offs_f[None, :] * skf,
                mask=(rows < T)[:, None] & (offs_f < F)[None, :], other=0.0)
    first = group * S
    if BATCHED:
        offs_s = tl.arange(0, S)
        offs_g = offs_s[:, None, None] * (BF * BF) + offs_f[None, :, None] * BF + offs_f[None, None, :]
        k3 = tl.reshape(k, (S, BN, BF))
        grams = _exact_dot(tl.permute(k3, (0, 2, 1)), k3, None, tl.bfloat16, "tf32x3")
        tl.store(gram_base + first * (BF * BF) + offs_g, tl.cumsum(grams, axis=0),
                 mask=(first + offs_s < num_blocks)[:, None, None])
    else:
        offs_g = offs_f[:, None] * BF + offs_f[None, :]
        kt = tl.trans(k)
        for j in tl.static_range(S):
            prefix = tl.dot(kt, tl.where((offs_n < (j + 1) * BN)[:, None], k, 0.0))
            tl.store(gram_base + (first + j) * (BF * BF) + offs_g, prefix, mask=first + j < num_blocks)


def grouped_grams(k, block_n, block_f, group, batched, warps):
    batch, seq, heads, feature_dim = k.shape
    blocks = triton.cdiv(seq, block_n)
    grams = torch.empty(batch * heads, blocks, block_f, block_f, dtype=torch.float32, device=k.device)
    grouped_gram_kernel[(batch * heads * triton.cdiv(blocks, group),)](
        k, grams, *k.stride(), seq, heads, feature_dim, BN=block_n, BF=block_f, S=group, BATCHED=batched,
        num_warps=warps)
    return grams


if __name__ == "__main__":
    for B, T, H in [(256, 512, 12), (64, 2048, 12), (48, 3072, 12)]:
        k = torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16)
        blocks = triton.cdiv(T, 64)
        mbytes = (k.numel() * 2 + B * H * blocks * 1024) / 1e6
        cases = {"old": lambda: old_grams(k, 64, 16)}
        for group in (1, 2, 4, 8):
            for warps in (1, 2, 4):
                for batched in (False, True):
                    name = f"{'batched' if batched else 'masked'} S{group} w{warps}"
                    cases[name] = lambda g=group, b=batched, w=warps: grouped_grams(k, 64, 16, g, b, w)
        for name, build in cases.items():
            row = {"shape": [B, T, H], "case": name, "pass1_MB": mbytes}
            try:
                out = build()
                if name != "old":  # within-group prefixes: group 0 equals old's slots
                    group = int(name.split(" S")[1].split()[0])
                    row["group0_rel_diff"] = ((out[:, :group] - old_grams(k, 64, 16)[:, :group]).abs().max()
                                              / out[:, :group].abs().max()).item()
                row["us"] = 1e3 * do_bench(build, rep=100)
                row["us_back_to_back"] = back_to_back(build)
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            print(json.dumps(row), flush=True)
