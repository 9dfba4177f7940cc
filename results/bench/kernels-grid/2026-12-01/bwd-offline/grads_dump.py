"""Dump o, dq, dk, dv of mqar's Triton kernels under the interpreter, for comparing two trees (no GPU).

Run once per tree with PYTHONPATH at that tree, TRITON_INTERPRET=1, then compare the two dumps:
    TRITON_INTERPRET=1 PYTHONPATH=<tree> python grads_dump.py OUT.pt
    python grads_dump.py --compare A.pt B.pt
Cases: fp32 inputs (the interpreter's own dot) and bf16 inputs through the kernels' bf16 path with the dot
emulated as in tests/test_kernels_triton.py's bf16_dot_in_interpreter fixture; based and rebased; the parallel
form at the interpreter's default tiles and at 32×128-like tiles (BM 16, BN 64: several steps per key block, a
diagonal cutting through tiles), and both chunked backward layouts.
"""
from __future__ import annotations

import sys
import zlib

import torch


def _cases():
    shapes = [(2, 100, 2, 16, 8), (1, 64, 1, 16, 16), (1, 37, 2, 8, 4), (1, 70, 1, 16, 24)]
    for dtype in ("fp32", "bf16"):
        for kernel in ("based", "rebased"):
            for shape in shapes:
                for alg in ("parallel", "parallel-16x64", "chunked-sum", "chunked-split"):
                    yield dtype, kernel, shape, alg


def _bf16_dot():
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    original = interpreter.InterpreterBuilder.create_dot

    def as_fp32(handle):
        if handle.dtype.scalar != tl.bfloat16:
            return handle
        data = interpreter._convert_float(handle.data, tl.bfloat16, tl.float32, None).view(np.float32)
        return interpreter.TensorHandle(data, tl.float32)

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        return original(self, as_fp32(a), as_fp32(b), d, input_precision, max_num_imprecise_acc)

    interpreter.InterpreterBuilder.create_dot = create_dot


def dump(path):
    from mqar.kernels import triton_ops
    from mqar.kernels.triton_ops import LinearAttentionFunction

    _bf16_dot()  # only reached for bf16 operands
    results = {}
    for dtype, kernel, shape, alg in _cases():
        g = torch.Generator().manual_seed(zlib.crc32(repr((kernel, shape)).encode()))
        batch, seq, heads, f, d = shape
        q, k = (torch.randn(batch, seq, heads, f, generator=g) for _ in range(2))
        v, do = (torch.randn(batch, seq, heads, d, generator=g) for _ in range(2))
        torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        q, k, v, do = (t.to(torch_dtype) for t in (q, k, v, do))
        triton_ops.CONFIG_OVERRIDE.clear()
        triton_ops.CHUNKED_BWD = None
        algorithm = alg.split("-")[0]
        if alg == "parallel-16x64":
            triton_ops.CONFIG_OVERRIDE["parallel"] = triton_ops._Config(32, 32, 128, 4, 1, bwd_block=16,
                                                                        bwd_block_n=64)
        elif algorithm == "chunked":
            triton_ops.CHUNKED_BWD = alg.split("-")[1]
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = LinearAttentionFunction.apply(*leaves, kernel, 1e-6, algorithm, 16)
        out.backward(do)
        results[(dtype, kernel, shape, alg)] = [out.detach().float()] + [t.grad.float() for t in leaves]
    torch.save(results, path)


def compare(a_path, b_path):
    a, b = torch.load(a_path), torch.load(b_path)
    worst = 0.0
    for key in a:
        diffs = []
        for name, x, y in zip(("o", "dq", "dk", "dv"), a[key], b[key]):
            scale = max(x.abs().max().item(), 1e-30)
            rel = (x - y).abs().max().item() / scale
            diffs.append(f"{name} {rel:.1e}")
            worst = max(worst, rel)
        print(key, " ".join(diffs))
    print(f"worst max|a-b|/max|a| over all cases and outputs: {worst:.2e}")


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        dump(sys.argv[1])
