"""Register pressure of the parallel backward's loops, offline for sm_90: `nvdisasm --print-life-ranges` (count
mode) on the cubin of a launch recorded and compiled as in bwd_occupancy.py gives the number of live general
registers at every instruction; this prints, per loop (a backward branch to a label), the peak, where it is (the
instruction and the nearest MMA / atomic before it), and the live count at each MMA, the dq atomics and the barriers
(the points the tile's products pass through), so what is live across them can be read off.

    PYTHONPATH=$PWD python results/bench/kernels-grid/s14-2026-11-30/bwd-offline/live_regs.py \
        [--shape 64,2048,12,16,16] [--kernel rebased] [--launch default ...] [--trace] [--save DIR]
--trace prints every instruction of the off-diagonal loop with its live count; --save writes the annotated listing.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bwd_occupancy as bo  # noqa: E402

obr = bo.ops.obr


def life_ranges(compiled) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        run = subprocess.run([os.path.join(obr.NVIDIA_BIN, "nvdisasm"), "-plr", "-lrm", "count", cubin],
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"nvdisasm: {run.stderr.strip()[:300]}")
        return run.stdout


def parse(text: str):
    """-> [(addr, live GPRs, instruction text)], {label: addr}"""
    rows, labels, pending = [], {}, []
    for line in text.splitlines():
        lab = re.match(r"\s*(\.L_x_\d+):", line)
        if lab:
            pending.append(lab.group(1))
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,5})\*/\s+(.*?)\s*;\s*//\s*\|\s*(\d*)\s*\|", line)
        if m:
            addr = int(m.group(1), 16)
            for name in pending:
                labels[name] = addr
            pending = []
            rows.append((addr, int(m.group(3) or 0), m.group(2)))
    return rows, labels


def loops(rows, labels):
    out = []
    for addr, _, text in rows:
        m = re.search(r"BRA\s+`\((\.L_x_\d+)\)", text)
        if m and labels.get(m.group(1), addr + 1) < addr:
            out.append((labels[m.group(1)], addr))
    return [lp for lp in out if not any(o != lp and lp[0] <= o[0] and o[1] <= lp[1] for o in out)]


def opcode(text: str) -> str:
    words = text.split()
    return words[1] if words[0].startswith("@") else words[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="64,2048,12,16,16")
    p.add_argument("--kernel", nargs="+", default=["rebased"])
    p.add_argument("--launch", nargs="+", default=["default"])
    p.add_argument("--trace", action="store_true")
    p.add_argument("--save")
    a = p.parse_args()
    shape = tuple(int(x) for x in a.shape.split(","))
    for kernel in a.kernel:
        for launch in a.launch:
            fn, grid, args, kwargs = bo.backward_launch(shape, kernel, launch)
            compiled = obr.compile_launch(fn, args, kwargs)
            text = life_ranges(compiled)
            if a.save:
                os.makedirs(a.save, exist_ok=True)
                with open(os.path.join(a.save, f"{kernel}-{a.shape.replace(',', 'x')}-{launch}.plr.sass"), "w") as f:
                    f.write(text)
            rows, labels = parse(text)
            res = obr.resource_usage(compiled)
            print(f"## {kernel} {a.shape} {launch}: {res['regs']} registers, spill {res['spill_st']}/"
                  f"{res['spill_ld']} B, kernel peak {max(n for _, n, _ in rows)} live")
            for name, (start, end) in zip(("causal", "off-diag"), loops(rows, labels)):
                body = [r for r in rows if start <= r[0] <= end]
                peak = max(body, key=lambda r: r[1])
                marks = []
                last_mark = "loop start"
                for addr, n, t in body:
                    op = opcode(t)
                    if op.startswith(("HMMA", "HGMMA", "RED", "BAR", "STSM", "F2FP")):
                        marks.append(f"{op.split('.')[0]}@{n}")
                    if addr == peak[0]:
                        where = last_mark
                    if op.startswith(("HMMA", "HGMMA", "RED", "BAR")):
                        last_mark = f"{op} at {addr:#x}"
                print(f"- {name} loop {start:#x}-{end:#x}: {len(body)} instructions, live min {min(r[1] for r in body)}"
                      f" / max {peak[1]} at {peak[0]:#x} `{peak[2]}` (after {where})")
                # consecutive duplicates folded: HMMA@150 x4
                folded, prev, count = [], None, 0
                for m in marks + [None]:
                    if m == prev:
                        count += 1
                        continue
                    if prev is not None:
                        folded.append(prev + (f"×{count}" if count > 1 else ""))
                    prev, count = m, 1
                print("  path: " + " ".join(folded))
                if a.trace and name == "off-diag":
                    for addr, n, t in body:
                        print(f"    {addr:05x} {n:4d}  {t}")


if __name__ == "__main__":
    sys.exit(main())
