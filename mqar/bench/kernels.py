"""Kernel benchmark: mqar's Triton linear attention vs FLA's Based/ReBased kernels vs torch SDPA (flash).

Forward and forward+backward milliseconds (median of `triton.testing.do_bench`) at the shapes of the issue /
REFERENCE.md and at MQAR training shapes, in bf16 and fp32, all in one run on one GPU. Writes kernels.json (every
number, with device and versions) and kernels.md (the tables). FLA is optional: without it its columns say so.

Layouts: ours and FLA take [batch, seq, heads, dim] (q/k dim F, v dim D). SDPA takes [batch, heads, seq, dim]; it
is given q, k of dim F and v of dim D where its backend accepts that, else all three at the smallest
multiple of 8 ≥ max(F, D) (noted per row).
"""

from __future__ import annotations

import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from mqar.bench import format_cell, measure_each
from mqar.errors import UserError
from mqar.provenance import source_digest


@dataclass(frozen=True)
class KernelShape:
    batch: int
    seq: int
    heads: int
    feature_dim: int
    value_dim: int
    dtype: str  # "bf16" | "fp32"
    group: str  # "issue" (targets of the issue) | "mqar" (training shapes of the figure grid)

    @property
    def label(self) -> str:
        return f"{self.batch}, {self.seq}, {self.heads}, {self.feature_dim}, {self.value_dim}"


# Issue targets (H100, bf16 unless noted, forward+backward ms); the benchmark reports ours against them.
TARGETS_MS = {
    (256, 512, 12, 16, 16, "bf16"): 1.2,
    (64, 2048, 12, 16, 16, "bf16"): 2.0,
    (8, 8192, 8, 16, 64, "bf16"): 2.0,
    (2, 32768, 8, 16, 64, "bf16"): 3.5,
    (256, 512, 12, 16, 16, "fp32"): 5.0,
}

ISSUE_SHAPES = [KernelShape(b, t, h, f, d, dt, "issue") for (b, t, h, f, d, dt) in TARGETS_MS]
# MQAR training: batch 512, 12 heads, feature dim 16, D = d_model // 12 (d_model 64 .. 512), T = 256 .. 2048
# (batch shrunk at long T the way gradient accumulation would run it).
MQAR_SHAPES = [
    KernelShape(512, 256, 12, 16, 5, "bf16", "mqar"),
    KernelShape(512, 256, 12, 16, 10, "bf16", "mqar"),
    KernelShape(64, 2048, 12, 16, 42, "bf16", "mqar"),
]
QUICK_SHAPES = [KernelShape(4, 300, 2, 16, 16, "bf16", "quick"), KernelShape(2, 1000, 2, 16, 8, "fp32", "quick")]

_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _ours(kernel: str, algorithm: str) -> Method:
    from mqar.kernels.triton_ops import linear_attention_triton

    return lambda q, k, v: linear_attention_triton(q, k, v, kernel=kernel, eps=1e-6, algorithm=algorithm)


def _fla_methods() -> dict[str, Method]:
    try:
        from fla.ops.based import fused_chunk_based, parallel_based
        from fla.ops.rebased import parallel_rebased
    except Exception:  # FLA is an optional benchmark dependency
        return {}
    return {
        "fla parallel_rebased": lambda q, k, v: parallel_rebased(q, k, v),
        "fla parallel_based": lambda q, k, v: parallel_based(q, k, v),
        "fla fused_chunk_based": lambda q, k, v: fused_chunk_based(q, k, v),
    }


def methods() -> dict[str, Method]:
    """Name -> function of (q, k, v) in [B, T, H, dim] layout. SDPA is handled apart (its own layout)."""
    ours = {
        "ours auto rebased": _ours("rebased", "auto"),
        "ours parallel rebased": _ours("rebased", "parallel"),
        "ours chunked rebased": _ours("rebased", "chunked"),
        "ours auto based": _ours("based", "auto"),
        "ours parallel based": _ours("based", "parallel"),
        "ours chunked based": _ours("based", "chunked"),
    }
    return {**ours, **_fla_methods()}


def _time(fn: Callable[[], object], warmup_ms: int, rep_ms: int) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))


def _bench_method(fn: Method, inputs: list[torch.Tensor], warmup_ms: int, rep_ms: int) -> dict:
    grad = torch.randn_like(fn(*inputs))
    forward_ms = _time(lambda: fn(*inputs), warmup_ms, rep_ms)

    def step():
        out = fn(*inputs)
        torch.autograd.grad(out, inputs, grad)

    return {"fwd_ms": forward_ms, "fwdbwd_ms": _time(step, warmup_ms, rep_ms)}


def _sdpa_inputs(shape: KernelShape, dims: tuple[int, int]) -> list[torch.Tensor]:
    dtype = _DTYPES[shape.dtype]
    qk_dim, v_dim = dims
    make = lambda d: torch.randn(shape.batch, shape.heads, shape.seq, d, device="cuda", dtype=dtype, requires_grad=True)  # noqa: E731
    return [make(qk_dim), make(qk_dim), make(v_dim)]


def _bench_sdpa(shape: KernelShape, warmup_ms: int, rep_ms: int) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention

    # Flash has no fp32 kernel: fp32 runs on the memory-efficient one.
    backend = SDPBackend.FLASH_ATTENTION if shape.dtype != "fp32" else SDPBackend.EFFICIENT_ATTENTION
    padded = -(-max(shape.feature_dim, shape.value_dim) // 8) * 8
    for dims in [(shape.feature_dim, shape.value_dim), (padded, padded)]:
        try:
            inputs = _sdpa_inputs(shape, dims)

            def fn(q, k, v):
                with sdpa_kernel(backend):
                    return scaled_dot_product_attention(q, k, v, is_causal=True)

            result = _bench_method(fn, inputs, warmup_ms, rep_ms)
            return {**result, "note": f"{backend.name.lower()}, q/k dim {dims[0]}, v dim {dims[1]}"}
        except RuntimeError as error:
            last_error = str(error).splitlines()[0]
    return {"error": last_error}


def bench_shape(shape: KernelShape, names: list[str] | None, warmup_ms: int, rep_ms: int) -> dict:
    """Every method at one shape: {method: {fwd_ms, fwdbwd_ms} or {error}}."""
    from mqar.kernels.triton_ops import choose_algorithm

    dtype = _DTYPES[shape.dtype]
    torch.manual_seed(0)
    make = lambda d: torch.randn(shape.batch, shape.seq, shape.heads, d, device="cuda", dtype=dtype, requires_grad=True)  # noqa: E731
    inputs = [make(shape.feature_dim), make(shape.feature_dim), make(shape.value_dim)]
    results: dict[str, dict] = {}
    for name, fn in methods().items():
        if names and name not in names:
            continue
        try:
            results[name] = _bench_method(fn, inputs, warmup_ms, rep_ms)
        except Exception as error:  # a baseline that cannot run this shape says why, the others go on
            results[name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
        torch.cuda.empty_cache()
    if not names or "sdpa" in names:
        results["sdpa"] = _bench_sdpa(shape, warmup_ms, rep_ms)
    row = {**asdict(shape), "results": results}
    row["auto_choice"] = choose_algorithm(shape.batch, shape.seq, shape.heads, shape.feature_dim, shape.value_dim, dtype)
    target = TARGETS_MS.get((shape.batch, shape.seq, shape.heads, shape.feature_dim, shape.value_dim, shape.dtype))
    if target is not None:
        row["target_fwdbwd_ms"] = target
    return row


def command_line() -> str:
    """The command as it can be pasted back into a shell: 'mqar …' (also under `python -m mqar`), each argument
    quoted where it needs it (--method 'ours auto rebased' is one argument)."""
    program = sys.argv[0] if sys.argv else "mqar"
    if Path(program).name in ("mqar", "__main__.py"):
        program = "mqar"
    return shlex.join([program] + sys.argv[1:])


def environment() -> dict:
    import triton

    env = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "command": command_line(),
        "mqar_source": source_digest(),  # tells apart the trees of a side-by-side run (mqar.provenance)
    }
    try:
        import fla

        env["fla"] = getattr(fla, "__version__", "installed")
    except Exception:
        env["fla"] = "not installed"
    return env


def markdown(payload: dict) -> str:
    rows = payload["rows"]
    env = payload["environment"]
    names = list(dict.fromkeys(name for row in rows for name in row["results"]))
    lines = [
        "# Kernel benchmark: Based / ReBased linear attention",
        "",
        f"Device: {env['device']}; torch {env['torch']}, triton {env['triton']}, FLA {env['fla']}; "
        f"mqar source {env.get('mqar_source', 'not recorded')}; {env['date_utc']} UTC.",
        f"Command: `{env['command']}`. Median of `triton.testing.do_bench`, milliseconds. Shapes are "
        "B, T, H, F (q/k dim), D (v dim). 'err': the kernel cannot run that shape (see kernels.json).",
        "",
    ]
    for key, title in (("fwdbwd_ms", "Forward + backward"), ("fwd_ms", "Forward")):
        lines += [f"## {title} (ms)", "", "| B, T, H, F, D | dtype | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for row in rows:
            label = f"{row['batch']}, {row['seq']}, {row['heads']}, {row['feature_dim']}, {row['value_dim']}"
            cells = [format_cell(row["results"].get(name), key) for name in names]
            lines.append(f"| {label} | {row['dtype']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Issue targets (forward + backward, ours = auto rebased)", "",
              "| B, T, H, F, D | dtype | target | ours | auto chose | FLA parallel_rebased | SDPA | met |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "target_fwdbwd_ms" not in row:
            continue
        res = row["results"]
        ours = res.get("ours auto rebased", {}).get("fwdbwd_ms")
        met = "yes" if ours is not None and ours <= row["target_fwdbwd_ms"] else "no"
        label = f"{row['batch']}, {row['seq']}, {row['heads']}, {row['feature_dim']}, {row['value_dim']}"
        lines.append(f"| {label} | {row['dtype']} | {row['target_fwdbwd_ms']} | {format_cell(res.get('ours auto rebased'), 'fwdbwd_ms')} | "
                     f"{row['auto_choice']} | {format_cell(res.get('fla parallel_rebased'), 'fwdbwd_ms')} | "
                     f"{format_cell(res.get('sdpa'), 'fwdbwd_ms')} | {met} |")
    notes = sorted({f"{row['label']}: {row['results']['sdpa']['note']}" for row in rows if "note" in row["results"].get("sdpa", {})})
    if notes:
        lines += ["", "SDPA inputs: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def run(out_dir: Path, quick: bool = False, names: list[str] | None = None, warmup_ms: int = 25, rep_ms: int = 100) -> dict:
    """Benchmark every shape, write kernels.json and kernels.md into out_dir, return the payload."""
    known = [*methods(), "sdpa"]
    unknown = [name for name in names or [] if name not in known]
    if unknown:  # else nothing is measured and the tables come out empty
        raise UserError(f"unknown --method {', '.join(map(repr, unknown))}; choose from {', '.join(known)} "
                        "(FLA's methods need the fla package)")
    if not torch.cuda.is_available():
        raise UserError("mqar bench kernels needs a CUDA GPU (the Triton kernels and the baselines run there)")
    shapes = QUICK_SHAPES if quick else ISSUE_SHAPES + MQAR_SHAPES

    def measure(shape: KernelShape) -> dict:
        row = bench_shape(shape, names, warmup_ms, rep_ms)
        row["label"] = shape.label
        return row

    return measure_each(shapes, measure, lambda row: f"{row['label']} {row['dtype']}", out_dir, "kernels", markdown,
                        environment)
