"""Registers and spills of the chunked form's backward kernels, compiled offline for sm_90 (no GPU needed).

Runs mqar's own `_backward` on CPU tensors with every Triton kernel of triton_ops swapped for a recorder, so the
launches (arguments, constexprs, num_warps, num_stages) are exactly the ones main's code makes for the shape; then
specialises each recorded backward launch the way Triton's JIT does (same binder, alignment / divisibility-16
attributes of pointers and ints) for GPUTarget("cuda", 90, 64), compiles it with `triton.compile` and reads the
ptxas report (`ptxas -v` on the kernel's PTX, the options Triton uses) and the cubin's resource usage
(`cuobjdump --dump-resource-usage`).

Usage, from the repository root, without TRITON_INTERPRET (the GPU configs are wanted, not the interpreter's):
    PYTHONPATH=$PWD python results/bench/kernels-tuned/2026-11-30/scripts/offline_bwd_regs.py \
        [--variant sum fused split] [--kernel rebased based] [--shape 8,8192,8,16,64 ...] [--two-mma off on]
        [--dump DIR]
--variant sets triton_ops.CHUNKED_BWD (branch bwd-split; on main, which lacks it, only "sum" is possible);
"split-sum", for this measurement only, is "split" with main's loops (INTER_ACC False): the split alone.
--two-mma sets triton_ops.CHUNKED_BWD_TWO_MMA (branch bwd-split after the two-MMA commit; "off" elsewhere).
Besides the resource usage, each row counts the kernel's MMA instructions, statically (a loop body once): PTX
`wgmma.mma_async` by operand type (tf32 / bf16 / f16) and `mma.sync`, SASS `HGMMA` and `HMMA`, and PTX
`cvt.rna.tf32.f32` (tf32x3's splits).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

assert os.environ.get("TRITON_INTERPRET", "0") != "1", "unset TRITON_INTERPRET: the GPU configs are wanted"

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, make_backend  # noqa: E402
from triton.runtime.jit import create_function_from_signature  # noqa: E402

from mqar.kernels import triton_ops  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)  # what the driver reports for an H200 (the NVIDIA backend ignores warp_size)
NVIDIA_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")


class Recorder:
    """Stands in for a JITFunction: `kernel[grid](*args, **kwargs)` records the launch instead of running it."""

    def __init__(self, fn, launches):
        self.fn, self.launches = fn, launches

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.launches.append((self.fn, grid, args, kwargs))


def record_backward(shape, kernel: str, dtype=torch.bfloat16):
    """The kernel launches of one chunked fwd+bwd at `shape` (B, T, H, F, D) through triton_ops' own code."""
    batch, seq, heads, feature_dim, value_dim = shape
    launches = []
    saved = {}
    for name in dir(triton_ops):
        obj = getattr(triton_ops, name)
        if isinstance(obj, triton.runtime.jit.JITFunction):
            saved[name] = obj
            setattr(triton_ops, name, Recorder(obj, launches))
    try:
        q, k = [torch.zeros(batch, seq, heads, feature_dim, dtype=dtype) for _ in range(2)]
        v, do = [torch.zeros(batch, seq, heads, value_dim, dtype=dtype) for _ in range(2)]
        out, out32, denominator, kept = triton_ops._forward(q, k, v, kernel, 1e-6, "chunked", None)
        del launches[:]  # the forward's launches: only the backward's are compiled
        triton_ops._backward(q, k, v, out32, denominator, do, kernel, "chunked", None, kept)
    finally:
        for name, obj in saved.items():
            setattr(triton_ops, name, obj)
    return launches


def compile_launch(fn, args, kwargs):
    """triton.compile of the launch as the JIT would specialise it for TARGET -> CompiledKernel."""
    backend = make_backend(TARGET)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound_args, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound_args, specialization, options)
    return triton.compile(ASTSource(fn, signature, constexprs, attrs), target=TARGET, options=options.__dict__)


def resource_usage(compiled) -> dict:
    """ptxas -v (as Triton calls it: -lineinfo, sm_90a) on the PTX, and cuobjdump on the cubin."""
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(ptx, "w") as f:
            f.write(compiled.asm["ptx"])
        log = subprocess.run([os.path.join(NVIDIA_BIN, "ptxas"), "-lineinfo", "-v", "--gpu-name=sm_90a", ptx,
                              "-o", cubin], check=True, capture_output=True, text=True).stderr
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([os.path.join(NVIDIA_BIN, "cuobjdump"), "--dump-resource-usage", cubin],
                               check=True, capture_output=True, text=True).stdout
    number = lambda pattern, text: int(re.search(pattern, text).group(1))  # noqa: E731
    return {
        "regs": number(r"Used (\d+) registers", log),
        "stack": number(r"(\d+) bytes stack frame", log),
        "spill_st": number(r"(\d+) bytes spill stores", log),
        "spill_ld": number(r"(\d+) bytes spill loads", log),
        "smem": compiled.metadata.shared,
        "cubin_reg": number(r"REG:(\d+)", usage),
        "cubin_stack": number(r"STACK:(\d+)", usage),
    }


def instruction_counts(compiled) -> dict:
    """Static MMA / tf32-split instruction counts in the PTX and SASS (a loop body counts once)."""
    ptx, code = compiled.asm["ptx"], sass(compiled)
    counts = {f"wgmma.{t}": len(re.findall(rf"wgmma\.mma_async\S*\.{t}\b", ptx)) for t in ("tf32", "bf16", "f16")}
    counts["wgmma"] = len(re.findall(r"wgmma\.mma_async", ptx))
    counts["mma.sync"] = len(re.findall(r"\bmma\.sync", ptx))
    counts["cvt.tf32"] = len(re.findall(r"cvt\.rna\.tf32\.f32", ptx))
    counts["HGMMA"] = len(re.findall(r"\bHGMMA\.", code))
    counts["HMMA"] = len(re.findall(r"\bHMMA\.", code))
    return counts


def sass(compiled) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        return subprocess.run([os.path.join(NVIDIA_BIN, "cuobjdump"), "-sass", cubin], check=True,
                              capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", nargs="+", default=["sum"])
    parser.add_argument("--kernel", nargs="+", default=["rebased"])
    parser.add_argument("--shape", nargs="+", default=["8,8192,8,16,64", "2,32768,8,16,64"])
    parser.add_argument("--two-mma", nargs="+", default=["off"], choices=["off", "on"])
    parser.add_argument("--dump", help="write each compiled kernel's ttgir / ptx / sass here")
    a = parser.parse_args()
    print(f"triton {triton.__version__}, torch {torch.__version__}, target {TARGET}, "
          f"ptxas {subprocess.run([os.path.join(NVIDIA_BIN, 'ptxas'), '--version'], capture_output=True, text=True).stdout.split()[-1]}")
    print("| variant | kernel | B,T,H,F,D | launch | grid | consts | warps | stages | regs | stack B | spill st/ld B | "
          "smem B | PTX wgmma (tf32/bf16/f16) | mma.sync | SASS HGMMA | HMMA | cvt.rna.tf32 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    if hasattr(triton_ops, "_CHUNKED_BWD_LAUNCHES"):
        triton_ops._CHUNKED_BWD_LAUNCHES["split-sum"] = (("dq", False), ("dkdv", False))
    for variant, two_mma in [(v, t) for t in a.two_mma for v in a.variant]:
        if variant != "sum" or hasattr(triton_ops, "CHUNKED_BWD"):
            triton_ops.CHUNKED_BWD = variant
        if two_mma == "on" or hasattr(triton_ops, "CHUNKED_BWD_TWO_MMA"):
            triton_ops.CHUNKED_BWD_TWO_MMA = two_mma == "on"
        for kernel in a.kernel:
            for shape_text in a.shape:
                shape = tuple(int(x) for x in shape_text.split(","))
                for fn, grid, args, kwargs in record_backward(shape, kernel):
                    if fn.__name__ != "parallel_bwd_kernel":
                        continue  # the backward's state scan is not what is measured here
                    compiled = compile_launch(fn, args, kwargs)
                    r = resource_usage(compiled)
                    assert (r["regs"], r["stack"]) == (r["cubin_reg"], r["cubin_stack"]), r
                    consts = ", ".join(f"{k}={kwargs[k]}" for k in ("BM", "BE", "BD") if k in kwargs)
                    consts += f", INTER_GRADS={kwargs.get('INTER_GRADS', 'all')}, INTER_ACC={kwargs.get('INTER_ACC', False)}"
                    consts += f", TWO_MMA={kwargs.get('TWO_MMA', False)}"
                    n = instruction_counts(compiled)
                    print(f"| {variant} | {kernel} | {shape_text} | {fn.__name__} | {grid} | {consts} | "
                          f"{kwargs.get('num_warps')} | {kwargs.get('num_stages')} | {r['regs']} | {r['stack']} | "
                          f"{r['spill_st']}/{r['spill_ld']} | {r['smem']} | {n['wgmma']} ({n['wgmma.tf32']}/"
                          f"{n['wgmma.bf16']}/{n['wgmma.f16']}) | {n['mma.sync']} | {n['HGMMA']} | {n['HMMA']} | "
                          f"{n['cvt.tf32']} |", flush=True)
                    if a.dump:
                        os.makedirs(a.dump, exist_ok=True)
                        stem = os.path.join(a.dump, f"{variant}-{kernel}-{shape_text.replace(',', 'x')}-"
                                                    f"{fn.__name__}-{'-'.join(consts.split(', '))}")
                        for ext in ("ttgir", "ptx"):
                            with open(f"{stem}.{ext}", "w") as f:
                                f.write(compiled.asm[ext])
                        with open(f"{stem}.sass", "w") as f:
                            f.write(sass(compiled))


if __name__ == "__main__":
    sys.exit(main())
