"""Static SASS of the parallel form's kernels (parallel_fwd_kernel, parallel_bwd_kernel), compiled offline for sm_90.

2026-12-01 copy of kernels-grid/2026-11-30/scripts/offline_parallel_sass.py for the forward's TMA path: launches
other than the two parallel kernels (bwd_prep_kernel, new since) are skipped; --tma on / off sets
triton_ops.FWD_TMA and makes triton_ops._has_tma true for the CPU tensors (so the host descriptors of a GPU launch
are built and specialised: `tensordesc` arguments); --fwd-only skips the backward. Everything else as before.

No GPU needed. Reuses results/bench/kernels-tuned/2026-11-30/scripts/offline_bwd_regs.py's approach (imported from
there): mqar's own `_forward` / `_backward` run on CPU tensors with every Triton kernel of triton_ops swapped for a
recorder, so the launches (arguments, constexprs, num_warps, num_stages) are exactly the GPU code path's; each is
specialised like the JIT does and compiled with `triton.compile` for GPUTarget("cuda", 90, 32); ptxas -v and
cuobjdump give registers / spills, `cuobjdump -sass` the code.

Loops are found from the branch structure: a `BRA` whose target lies before it closes a loop [target, BRA]; a loop
holding no other loop's back edge is innermost. Forward branches inside a loop skip a region: a region with no
BSSY before its branch (a warp-uniform runtime `if`, e.g. the forward's `causal` flag, true on one key block per
program) is reported as a cold region and left out of the hot count; regions under BSSY / BSYNC (the predicated
per-row dq atomics) are executed on every iteration and stay in.

Per-score normalisation: hot-body instructions × threads / (BM × BN) scores the iteration computes. "dyn/score"
estimates the whole kernel like ncu's count: Σ over programs of threads × (instructions outside loops + iterations ×
body [+ cold region where taken]) over the useful causal scores B·H·T(T+1)/2, the loops' trip counts from the
kernel's own bounds.

Usage, from the repository root, without TRITON_INTERPRET:
    PYTHONPATH=$PWD python results/bench/kernels-grid/2026-11-30/scripts/offline_parallel_sass.py \
        [--shape 256,512,12,16,16 64,2048,12,16,16] [--kernel rebased based] [--bwd 32x64x2 ...] [--dump DIR]
--bwd BMxBNxWARPS adds a backward compiled with those tiles (CONFIG_OVERRIDE, e.g. 32x64x2, the config ncu saw).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.util
import os
import re
import sys

assert os.environ.get("TRITON_INTERPRET", "0") != "1", "unset TRITON_INTERPRET: the GPU configs are wanted"

import torch  # noqa: E402
import triton  # noqa: E402

from mqar.kernels import triton_ops  # noqa: E402

assert not triton_ops.INTERPRETER

_HERE = os.path.dirname(os.path.abspath(__file__))
_OBR_PATH = os.path.join(_HERE, "..", "..", "..", "kernels-tuned", "2026-11-30", "scripts", "offline_bwd_regs.py")
_spec = importlib.util.spec_from_file_location("offline_bwd_regs", _OBR_PATH)
obr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(obr)

CLASSES = [  # (class, opcode regex on the base opcode + modifiers), first match wins
    ("tensor", r"^(HGMMA|HMMA|WARPGROUP)"),
    ("fp32", r"^(FFMA|FMUL|FADD|FMNMX|FSEL|FSETP|MUFU|FCHK|FSWZADD)"),
    ("convert", r"^(F2FP|F2F|I2F|F2I|PRMT)"),
    ("smem", r"^(LDS|LDSM|STS|STSM)"),
    ("gmem", r"^(LDG|LDGSTS|STG|LDGDEPBAR)"),
    ("atomic", r"^(RED|ATOM)"),
    ("shuffle", r"^(SHFL)"),
    ("int/addr", r"^(IMAD|IADD|LEA|SHF|LOP|ISETP|SEL|VIADD|MOV|SGXT|PLOP3|P2R|R2P|S2R|U[A-Z0-9]|S2UR|CS2R|IABS|ULDC)"),
    ("sync", r"^(BAR|WARPSYNC|DEPBAR|BSSY|BSYNC|ARRIVES|SYNCS)"),
    ("branch", r"^(BRA|EXIT|NOP)"),
]
CLASS_NAMES = [c for c, _ in CLASSES] + ["other"]


def classify(op: str) -> str:
    # "IMAD.U32 R, R, 0x10000" is bf16 -> fp32 (a shift into the high half): a conversion, counted as such
    for name, pattern in CLASSES:
        if re.match(pattern, op):
            return name
    return "other"


@dataclasses.dataclass
class Ins:
    addr: int
    pred: str
    op: str
    args: str


def parse_sass(text: str) -> list[Ins]:
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*/\*([0-9a-f]{4,5})\*/\s+(.*?)\s*;", line)
        if not m:
            continue
        words = m.group(2).split(None, 1)
        pred = ""
        if words[0].startswith("@"):
            pred, rest = words[0], words[1]
            words = rest.split(None, 1)
        out.append(Ins(int(m.group(1), 16), pred, words[0], words[1] if len(words) > 1 else ""))
    return out


def branch_target(ins: Ins) -> int | None:
    if ins.op.startswith("BRA"):
        m = re.search(r"0x([0-9a-f]+)", ins.args)
        return int(m.group(1), 16) if m else None
    return None


def find_loops(code: list[Ins]) -> list[tuple[int, int]]:
    """[(start, end)] of every back edge (BRA to an earlier address; the trailing self-branch excluded)."""
    loops = []
    for ins in code:
        t = branch_target(ins)
        if t is not None and t < ins.addr:
            loops.append((t, ins.addr))
    return loops


def innermost(loops):
    return [(s, e) for s, e in loops if not any((s2, e2) != (s, e) and s <= s2 and e2 <= e for s2, e2 in loops)]


def cold_regions(code: list[Ins], start: int, end: int) -> list[tuple[int, int]]:
    """Regions [branch + 1, target) skipped by a forward branch inside the loop that is not under a BSSY."""
    regions, open_bssy = [], 0
    body = [i for i in code if start <= i.addr <= end]
    for n, ins in enumerate(body):
        if ins.op.startswith("BSSY"):
            open_bssy += 1
        elif ins.op.startswith("BSYNC"):
            open_bssy -= 1
        t = branch_target(ins)
        if t is not None and ins.addr < t <= end and ins.pred and open_bssy == 0:
            regions.append((body[n + 1].addr, t - 0x10))
    return regions


def histogram(instrs: list[Ins]) -> collections.Counter:
    c = collections.Counter()
    for i in instrs:
        cls = classify(i.op)
        if i.op == "IMAD.U32" and "0x10000" in i.args:
            cls = "convert"  # bf16 -> fp32 by a 16-bit shift
        c[cls] += 1
    return c


def opcode_counts(instrs: list[Ins]) -> collections.Counter:
    return collections.Counter(i.op for i in instrs)


def record(shape, kernel: str, override=None, dtype=torch.bfloat16):
    batch, seq, heads, feature_dim, value_dim = shape
    launches, saved = [], {}
    for name in dir(triton_ops):
        obj = getattr(triton_ops, name)
        if isinstance(obj, triton.runtime.jit.JITFunction):
            saved[name] = obj
            setattr(triton_ops, name, obr.Recorder(obj, launches))
    old_override = dict(triton_ops.CONFIG_OVERRIDE)
    if override is not None:
        triton_ops.CONFIG_OVERRIDE["parallel"] = override
    try:
        q, k = [torch.zeros(batch, seq, heads, feature_dim, dtype=dtype) for _ in range(2)]
        v, do = [torch.zeros(batch, seq, heads, value_dim, dtype=dtype) for _ in range(2)]
        out, out32, den, kept = triton_ops._forward(q, k, v, kernel, 1e-6, "parallel", None)
        triton_ops._backward(q, k, v, out32, den, do, kernel, "parallel", None, kept)
    finally:
        for name, obj in saved.items():
            setattr(triton_ops, name, obj)
        triton_ops.CONFIG_OVERRIDE.clear()
        triton_ops.CONFIG_OVERRIDE.update(old_override)
    return launches


def trip_counts(name: str, kw: dict, seq: int) -> list[tuple[list[int], int]]:
    """Per program: [iterations of each innermost loop, in SASS order], times the cold region runs."""
    bm, bn = kw["BM"], kw["BN"]
    progs = []
    if name == "parallel_fwd_kernel":
        for pid_m in range(triton.cdiv(seq, bm)):
            hi = min((pid_m + 1) * bm, seq)
            starts = list(range(0, hi, bn))
            progs.append(([len(starts)], sum(1 for s in starts if s + bn > pid_m * bm)))
    else:
        for pid_n in range(triton.cdiv(seq, bn)):
            lo = (pid_n * bn // bm) * bm
            mid = min(triton.cdiv((pid_n + 1) * bn, bm) * bm, seq)
            progs.append(([len(range(lo, mid, bm)), len(range(mid, seq, bm))], 0))
    return progs


def analyse(fn, grid, args, kwargs, shape, dump=None, tag=""):
    compiled = obr.compile_launch(fn, args, kwargs)
    res = obr.resource_usage(compiled)
    text = obr.sass(compiled)
    code = parse_sass(text)
    # TMA's mbarrier waits: `SYNCS.PHASECHK.TRANS64.TRYWAIT P; @!P BRA retry` in line, the retry loop out of line
    # after the kernel's end (`TRYWAIT; @!P BRA self; BRA back`), run only while the data is not there yet: not
    # counted (neither as loops nor outside), and their `BRA back` closes no loop
    retry = set()
    for n, ins in enumerate(code):
        t = branch_target(ins)
        if t is not None and t < ins.addr and n and code[n - 1].addr == t and code[n - 1].op.startswith("SYNCS.PHASECHK"):
            retry.update((code[n - 1].addr, ins.addr))
            if n + 1 < len(code) and code[n + 1].op == "BRA" and not code[n + 1].pred:
                retry.add(code[n + 1].addr)
    code = [i for i in code if i.addr not in retry]
    loops = innermost(find_loops(code))
    loops = [lp for lp in loops if lp[0] != lp[1]]  # the trailing `BRA self`
    threads = 32 * kwargs["num_warps"]
    bm, bn = kwargs["BM"], kwargs["BN"]
    in_loop = set()
    rows = []
    for s, e in loops:
        body = [i for i in code if s <= i.addr <= e]
        colds = cold_regions(code, s, e)
        cold = [i for i in body if any(a <= i.addr <= b for a, b in colds)]
        hot = [i for i in body if i not in cold]
        in_loop.update(i.addr for i in body)
        rows.append(dict(range=(s, e), colds=colds, body=len(body), hot=hot, cold=cold))
    outside = [i for i in code if i.addr not in in_loop and not (i.op == "BRA" and branch_target(i) == i.addr)]
    if dump:
        os.makedirs(dump, exist_ok=True)
        with open(os.path.join(dump, f"{tag}-{fn.__name__}.sass"), "w") as f:
            f.write(text)
    batch, seq, heads = shape[:3]
    dyn = 0
    progs = trip_counts(fn.__name__, kwargs, seq)
    assert all(len(p[0]) == len(rows) for p in progs), (fn.__name__, len(rows))
    for iters, cold_times in progs:
        per = len(outside)
        for n, r in zip(iters, rows):
            per += n * len(r["hot"]) + (cold_times * len(r["cold"]) if r["cold"] else 0)
        dyn += per * threads
    dyn *= batch * heads
    scores = batch * heads * seq * (seq + 1) / 2
    if dump:
        os.makedirs(dump, exist_ok=True)
        stem = os.path.join(dump, f"{tag}-{fn.__name__}")
        with open(stem + ".sass", "w") as f:
            f.write(text)
        with open(stem + ".ttgir", "w") as f:
            f.write(compiled.asm["ttgir"])
        for n, r in enumerate(rows):
            with open(f"{stem}.loop{n}.txt", "w") as f:
                f.write("\n".join(f"{i.addr:05x}{' (cold)' if i in r['cold'] else ''}: {i.pred} {i.op} {i.args}"
                                  for i in sorted(r["hot"] + r["cold"], key=lambda i: i.addr)))
    return dict(res=res, rows=rows, outside=len(outside), threads=threads, per_score_scale=threads / (bm * bn),
                dyn_per_score=dyn / scores, total=len(code), progs=progs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", nargs="+", default=["256,512,12,16,16", "64,2048,12,16,16"])
    p.add_argument("--kernel", nargs="+", default=["rebased"])
    p.add_argument("--bwd", nargs="*", default=[], help="extra backward tiles BMxBNxWARPS (CONFIG_OVERRIDE)")
    p.add_argument("--dump")
    p.add_argument("--tma", choices=["on", "off"], default="on", help="triton_ops.FWD_TMA")
    p.add_argument("--fwd-only", action="store_true")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--opcodes", action="store_true", help="also print each hot loop's opcode counts")
    a = p.parse_args()
    print(f"triton {triton.__version__}, target {obr.TARGET}, FWD_TMA {a.tma}, {a.dtype}")
    cases = []
    for kernel in a.kernel:
        for shape_text in a.shape:
            shape = tuple(int(x) for x in shape_text.split(","))
            cases.append((kernel, shape_text, shape, None, "default"))
            for tiles in a.bwd:
                bm, bn, w = map(int, tiles.split("x"))
                base = triton_ops._config("parallel", None, torch.bfloat16, shape[4], shape[3], shape[1])
                cfg = dataclasses.replace(base, bwd_block=bm, bwd_block_n=bn, bwd_warps=w)
                cases.append((kernel, shape_text, shape, cfg, f"bwd{tiles}"))
    header = ("| kernel | B,T,H,F,D | config | launch | BM×BN, warps, stages | regs | spill st/ld B | smem B | loop "
              "| loop body (hot / cold) | outside loops | " + " | ".join(CLASS_NAMES) + " | hot/score | dyn/score |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    seen = set()
    triton_ops.FWD_TMA = a.tma == "on"
    triton_ops._has_tma = lambda device: True  # CPU tensors stand in for an sm_90 GPU's
    for kernel, shape_text, shape, cfg, label in cases:
        for fn, grid, args, kwargs in record(shape, kernel, cfg, getattr(torch, a.dtype)):
            if fn.__name__ not in ("parallel_fwd_kernel", "parallel_bwd_kernel"):
                continue
            if a.fwd_only and fn.__name__ != "parallel_fwd_kernel":
                continue
            if label != "default" and fn.__name__ != "parallel_bwd_kernel":
                continue
            key = (kernel, shape_text, label, fn.__name__)
            if key in seen:
                continue
            seen.add(key)
            r = analyse(fn, grid, args, kwargs, shape, a.dump,
                        f"{kernel}-{shape_text.replace(',', 'x')}-{label}")
            res = r["res"]
            for n, row in enumerate(r["rows"]):
                h = histogram(row["hot"])
                scale = r["per_score_scale"]
                cls = " | ".join(f"{h[c]} ({h[c] * scale:.2f})" for c in CLASS_NAMES)
                name = ("causal" if n == 0 else "off-diag") if fn.__name__ == "parallel_bwd_kernel" else "keys"
                shown = f"{label} TMA={kwargs.get('TMA')}" if "TMA" in kwargs else label
                print(f"| {kernel} | {shape_text} | {shown} | {fn.__name__.split('_')[1]} | {kwargs['BM']}×"
                      f"{kwargs['BN']}, {kwargs['num_warps']}, {kwargs['num_stages']} | {res['regs']} | "
                      f"{res['spill_st']}/{res['spill_ld']} | {res['smem']} | {name} {row['range'][0]:#x}-"
                      f"{row['range'][1]:#x} | {len(row['hot'])} / {len(row['cold'])} | {r['outside']} | {cls} | "
                      f"{len(row['hot']) * scale:.2f} | {r['dyn_per_score']:.2f} |", flush=True)
                if a.opcodes:
                    print("    opcodes: " + ", ".join(f"{op} {n}" for op, n in opcode_counts(row["hot"]).most_common()))
                    if row["cold"]:
                        print("    cold:    " + ", ".join(f"{op} {n}" for op, n in
                                                          opcode_counts(row["cold"]).most_common()))


if __name__ == "__main__":
    sys.exit(main())
