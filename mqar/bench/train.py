"""`mqar bench train`: training throughput of mqar's training step beside the project's own plain path.

Two ways to take the same optimiser step on the same model and data, measured in one process:
- **mqar**: what `mqar train` does (`mqar.train.Trainer.train_step`): the dataset resident on the device, batches
  indexed there, the LM head and loss only at labelled positions, fused AdamW on CUDA, bf16 autocast if asked,
  linear attention through `impl="auto"` (Triton on CUDA), the whole step replayed as a CUDA graph.
- **eager**: the same step without the CUDA graph (what the graph alone buys).
- **plain**: the straightforward way, as the public ReBased code trains: a DataLoader over host tensors copied to
  the device each step, full 8192-way logits at every position with cross-entropy's ignore_index, fp32, the
  plain-torch linear-attention reference.
Both report tokens/s (batch × seq_len per step), step time and peak device memory; the ratio is side by side.
"""

from __future__ import annotations

import platform
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from mqar.bench import write_report
from mqar.data import TaskSpec, generate
from mqar.errors import UserError
from mqar.models import build_model
from mqar.provenance import describe_device, resolve_device, versions
from mqar.runs import Recipe, RunConfig
from mqar.train import DeviceSplit, Trainer

# The issue-7 table's shapes: (arch, d_model, seq_len) with the Figure-1 grid's kv pairs for that length.
DEFAULT_CASES = (("rebased", 128, 512), ("based", 128, 512), ("attention", 128, 512), ("rebased", 128, 2048))
KV_PAIRS_FOR_SEQ_LEN = {128: 16, 256: 64, 512: 128, 1024: 256, 2048: 512}
# The public ReBased code's training tokens/s on an H100 (shared REFERENCE.md), quoted for orientation only:
# measured elsewhere, not in this run.
REFERENCE_TOKENS_PER_S = {("rebased", 128, 512): 2.39e6, ("based", 128, 512): 2.43e6,
                          ("attention", 128, 512): 2.89e6, ("rebased", 128, 2048): 1.53e6}


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """When and how long the timed steps ran.

    Packed-run benches (several processes on one GPU) add up the processes' tokens/s, which is only right if their
    timed windows are the same interval: `start_at` (a wall-clock time, after the warm-up) and `seconds` (time
    for a duration, not a step count) line them up, and the recorded window lets a summary check that they did.
    """

    steps: int = 10
    seconds: Optional[float] = None  # time steps for this long instead of `steps` of them
    start_at: Optional[float] = None  # Unix time at which the first timed window starts


def _timed(step: Callable[[], object], device: str, warmup: int, timing: Timing) -> dict:
    """Seconds per step after `warmup` untimed steps, and the timed window's wall-clock bounds."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    late_s = None
    if timing.start_at is not None:
        wait = timing.start_at - time.time()
        if wait > 0:
            time.sleep(wait)
        else:
            late_s = -wait  # the warm-up outlasted the agreed start: this window starts late
    window_start, started = time.time(), time.perf_counter()
    steps = 0
    while True:
        step()
        steps += 1
        if timing.seconds is None:
            if steps == timing.steps:
                break
        elif steps % 5 == 0:  # a sync every step would add a bubble per step; every 5 bounds the overshoot
            _synchronize(device)
            if time.perf_counter() - started >= timing.seconds:
                break
    _synchronize(device)
    elapsed = time.perf_counter() - started
    result = {"seconds_per_step": elapsed / steps, "timed_steps": steps, "window": [window_start, window_start + elapsed]}
    if late_s is not None:
        result["late_start_s"] = late_s
    return result


def _peak_memory(device: str) -> Optional[int]:
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None


def _reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        # An explicit "cuda:N" skips torch's lazy CUDA start-up, and the allocator then rejects the device
        # ("Invalid device argument") when this is the process's first CUDA call: start CUDA first.
        torch.cuda.init()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _measurement(tokens_per_step: int, timed: dict, device: str) -> dict:
    seconds_per_step = timed.pop("seconds_per_step")
    return {"tokens_per_s": tokens_per_step / seconds_per_step, "step_ms": 1e3 * seconds_per_step,
            "peak_memory_bytes": _peak_memory(device), **timed}


def measure_mqar_step(
    config: RunConfig, arrays, device: str, warmup: int, timing: Timing, cuda_graphs: bool = True,
    compile_model: bool = False,
) -> dict:
    """tokens/s of `mqar train`'s own training step (CUDA graph captured during the warm-up, if on)."""
    _reset_peak_memory(device)
    torch.manual_seed(config.seed)
    if cuda_graphs:
        warmup = max(warmup, Trainer.EAGER_STEPS_BEFORE_CAPTURE + 2)
    # The schedule's length only shapes the lr; a duration-timed bench may take more steps than it is told.
    trainer = Trainer(config, device, "auto", steps_total=warmup + timing.steps, cuda_graphs=cuda_graphs,
                      compile_model=compile_model)
    split = DeviceSplit(arrays, device, "train", config.task.seq_len, config.task.vocab_size)
    generator = torch.Generator().manual_seed(config.seed)
    batch_size = config.recipe.batch_size

    def step() -> None:
        batch = torch.randint(len(split), (batch_size,), generator=generator).to(device)
        trainer.train_step(split, batch)

    return _measurement(batch_size * config.task.seq_len, _timed(step, device, warmup, timing), device)


def measure_plain_step(config: RunConfig, arrays, device: str, warmup: int, timing: Timing) -> dict:
    """tokens/s of the plain path: DataLoader, full logits, fp32, torch reference kernels.

    Where a whole batch's full logits do not fit (fp32 ReBased d_model 128 at L = 2048 and batch 512 needs more than
    an H200's 141 GB), the batch is split into micro-batches, halved on each out-of-memory error, with the same summed
    loss and one optimiser step per batch, as `mqar train` does; the measurement records the micro-batch size.
    """
    _reset_peak_memory(device)
    torch.manual_seed(config.seed)
    task = config.task
    model = build_model(config.arch, config.d_model, task.seq_len, task.vocab_size, kernel_impl="torch").to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.recipe.weight_decay)
    inputs, labels = (torch.from_numpy(array).long() for array in arrays)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(inputs, labels), batch_size=config.recipe.batch_size, shuffle=True,
        drop_last=True, generator=torch.Generator().manual_seed(config.seed),
    )
    batches = iter(())
    micro_batch_size = config.recipe.batch_size

    def accumulate(batch_inputs: torch.Tensor, batch_labels: torch.Tensor) -> None:
        num_labelled = (batch_labels != -100).sum().clamp(min=1)
        for part_inputs, part_labels in zip(batch_inputs.split(micro_batch_size), batch_labels.split(micro_batch_size)):
            logits = model.logits(model(part_inputs))  # [micro_batch, seq, vocab]: every position
            loss_sum = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), part_labels.flatten(), ignore_index=-100, reduction="sum"
            )
            (loss_sum / num_labelled).backward()  # the whole batch's mean loss, summed over its micro-batches

    def step() -> None:
        nonlocal batches, micro_batch_size
        try:
            batch_inputs, batch_labels = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch_inputs, batch_labels = next(batches)
        batch_inputs, batch_labels = batch_inputs.to(device), batch_labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        while True:
            try:
                accumulate(batch_inputs, batch_labels)
                break
            except torch.cuda.OutOfMemoryError:
                if micro_batch_size == 1:
                    raise
            # outside the handler (its frames hold the activations): drop the partial gradients, redo the batch
            optimizer.zero_grad(set_to_none=True)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            micro_batch_size //= 2
        optimizer.step()

    model.train()
    measured = _measurement(config.recipe.batch_size * task.seq_len, _timed(step, device, warmup, timing), device)
    return {**measured, "micro_batch_size": micro_batch_size}


PATHS: dict[str, Callable[..., dict]] = {
    "mqar": measure_mqar_step,
    "eager": lambda *args: measure_mqar_step(*args, cuda_graphs=False),
    "compiled": lambda *args: measure_mqar_step(*args, compile_model=True),
    "plain": measure_plain_step,
}


def parse_case(text: str) -> tuple[str, int, int]:
    """`arch:d_model:seq_len`, e.g. `rebased:128:512`."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise UserError(f"bad case {text!r}; write arch:d_model:seq_len, e.g. rebased:128:512")
    return parts[0], int(parts[1]), int(parts[2])


def run(
    cases: tuple[tuple[str, int, int], ...] = DEFAULT_CASES,
    *,
    device: str = "auto",
    batch_size: int = 512,
    precision: str = "fp32",
    warmup: int = 3,
    steps: int = 10,
    seconds: Optional[float] = None,
    start_at: Optional[float] = None,
    paths: tuple[str, ...] = ("mqar", "eager", "plain"),
    out_dir: Optional[Path] = None,
) -> dict:
    device = resolve_device(device)
    if not cases:
        raise UserError("--cases is empty; give arch:d_model:seq_len cases, e.g. rebased:128:512")
    if not paths:
        raise UserError(f"--paths is empty; use any of {', '.join(PATHS)}")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise UserError(f"unknown path(s) {', '.join(unknown)}; use any of {', '.join(PATHS)}")
    if seconds is not None and seconds <= 0:
        raise UserError(f"--seconds must be positive, got {seconds}")
    if seconds is None and steps < 1:  # the timed loop stops when it has taken exactly `steps` steps
        raise UserError(f"--steps must be at least 1, got {steps}")
    timing = Timing(steps=steps, seconds=seconds, start_at=start_at)
    rows = []
    for arch, d_model, seq_len in cases:
        if seq_len not in KV_PAIRS_FOR_SEQ_LEN:
            raise UserError(f"seq_len {seq_len} has no Figure-1 kv count; use one of {sorted(KV_PAIRS_FOR_SEQ_LEN)}")
        task = TaskSpec(seq_len=seq_len, num_kv_pairs=KV_PAIRS_FOR_SEQ_LEN[seq_len])
        recipe = Recipe(batch_size=batch_size, precision=precision)
        config = RunConfig(task=task, arch=arch, d_model=d_model, lr=1e-3, recipe=recipe)
        arrays = generate(task, 4 * batch_size, seed=0)  # a few batches' worth; the step does not care which
        row = {"arch": arch, "d_model": d_model, "seq_len": seq_len, "num_kv_pairs": task.num_kv_pairs,
               "batch_size": batch_size, "precision": precision}
        for path in paths:
            try:
                row[path] = PATHS[path](config, arrays, device, warmup, timing)
            except torch.cuda.OutOfMemoryError as error:
                row[path] = {"error": f"out of memory: {str(error).splitlines()[0]}"}
        # each fast path's tokens/s over the plain path's (same run) and over the reference code's (quoted)
        fast = {path: row[path]["tokens_per_s"] for path in paths if path != "plain" and "tokens_per_s" in row[path]}
        if "tokens_per_s" in row.get("plain", {}):
            row["vs_plain"] = {path: rate / row["plain"]["tokens_per_s"] for path, rate in fast.items()}
        anchor = REFERENCE_TOKENS_PER_S.get((arch, d_model, seq_len))
        if anchor is not None:
            row["vs_reference_h100"] = {path: rate / anchor for path, rate in fast.items()}
        rows.append(row)
    # The options that make the measurement, as a command that repeats it (--out aside)
    timed = ["--seconds", str(seconds)] if seconds is not None else ["--steps", str(steps)]
    command = shlex.join(["mqar", "bench", "train", "--cases", ",".join(f"{a}:{d}:{t}" for a, d, t in cases),
                          "--device", device, "--batch-size", str(batch_size), "--precision", precision,
                          "--warmup", str(warmup), *timed, "--paths", ",".join(paths)])
    report = {"benchmark": "train", "device": describe_device(device), "versions": versions(),
              "machine": platform.machine(), "warmup_steps": warmup, "timed_steps": steps, "timed_seconds": seconds,
              "start_at": start_at, "command": command, "rows": rows}
    if out_dir is not None:
        write_report(out_dir, "train" if device.startswith("cuda") else "train-cpu", report, markdown)
    return report


def _cell(measurement: Optional[dict], key: str, scale: float, fmt: str) -> str:
    if not measurement:
        return "–"
    if "error" in measurement:
        return "OOM"
    value = measurement.get(key)
    return "–" if value is None else format(value / scale, fmt)


def _timed_text(report: dict) -> str:
    if report.get("timed_seconds") is None:
        return f"{report['timed_steps']} timed steps"
    return f"steps timed for {report['timed_seconds']:g} s"


def _ratio(row: dict, key: str, path: str) -> str:
    value = row.get(key, {}).get(path)
    return "–" if value is None else f"{value:.2f}×"


def _rate_cell(row: dict, path: str) -> str:
    measurement = row.get(path)
    rate = f"{_cell(measurement, 'tokens_per_s', 1e6, '.2f')} M"
    micro = (measurement or {}).get("micro_batch_size", row["batch_size"])
    return rate if micro == row["batch_size"] else f"{rate} (µ{micro})"


def markdown(report: dict) -> str:
    versions_text = ", ".join(f"{name} {version}" for name, version in report["versions"].items())
    paths = [path for path in PATHS if any(path in row for row in report["rows"])]
    fast_paths = [path for path in paths if path != "plain"]
    ratio_headers = [f"{path} / plain" for path in fast_paths] if "plain" in paths else []
    ratio_headers += [f"{path} / ReBased code on H100*" for path in fast_paths]
    lines = [
        "# mqar bench train",
        "",
        f"Device: {report['device']}; {versions_text}. {_timed_text(report)} after "
        f"{report['warmup_steps']} warm-up steps (the mqar path at least {Trainer.EAGER_STEPS_BEFORE_CAPTURE + 2}: "
        f"its CUDA graph is captured during the warm-up). Command: `{report.get('command', 'mqar bench train')}`.",
        "",
        "| arch, d_model, seq_len (kv) | batch, precision | "
        + " | ".join(f"{path} tokens/s | step ms | peak GB" for path in paths)
        + "".join(f" | {header}" for header in ratio_headers) + " |",
        "|---|---|" + "---|---|---|" * len(paths) + "---|" * len(ratio_headers),
    ]
    for row in report["rows"]:
        cells = [
            f"{row['arch']}, {row['d_model']}, {row['seq_len']} ({row['num_kv_pairs']})",
            f"{row['batch_size']}, {row['precision']}",
            *(cell for path in paths for cell in (
                _rate_cell(row, path),
                _cell(row.get(path), "step_ms", 1, ".1f"),
                _cell(row.get(path), "peak_memory_bytes", 1e9, ".1f"),
            )),
            *(_ratio(row, "vs_plain", path) for path in fast_paths if "plain" in paths),
            *(_ratio(row, "vs_reference_h100", path) for path in fast_paths),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "mqar: the training step of `mqar train` (CUDA graph on CUDA); eager: the same step without the graph; "
        "compiled: the mqar step with `--compile` (torch.compile of the model's forward; its compilation is in the "
        "warm-up); plain: DataLoader, full logits, fp32, torch reference kernels (the plain path is always fp32; µN: "
        "its batch ran as micro-batches of N, as the whole batch's logits did not fit). Paths are measured "
        "side by side in this run. *The ReBased public code's tokens/s (H100, shared REFERENCE.md) are quoted, not "
        "measured here, and only meaningful for a GPU run.",
        "",
    ]
    return "\n".join(lines)
