"""Issue 7, a means not tried yet: torch.compile of the model's forward (inductor fuses the small elementwise ops
around mqar's Triton kernels: residual adds, the short conv's gate, casts), with and without mqar's CUDA-graph step.
Tokens/s of `Trainer.train_step` (the step `mqar train` runs), side by side in one process, and the loss of the
same steps on the same batches (compiled vs not, to see that it computes the same thing).
Usage (repo root, GPU): python3 try_compile.py [arch:d_model:seq_len ...]   (default rebased:128:512)"""
import sys
import time

import torch

from mqar.data import TaskSpec, generate
from mqar.runs import Recipe, RunConfig
from mqar.train import DeviceSplit, Trainer

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BATCH = 512 if DEVICE == "cuda" else 8
STEPS = 20 if DEVICE == "cuda" else 2


def opaque_to_compile():
    """Hide mqar's Triton ops from inductor (it failed to recompile them: fp64 scalars), so only the rest fuses."""
    import mqar.kernels.triton_ops as ops
    import mqar.models.norm as norm
    ops.linear_attention_triton = torch.compiler.disable(ops.linear_attention_triton)
    norm.layer_norm = torch.compiler.disable(norm.layer_norm)


def measure(arch, d_model, seq_len, compiled, graphs):
    task = TaskSpec(seq_len=seq_len, num_kv_pairs=seq_len // 4)
    config = RunConfig(task=task, arch=arch, d_model=d_model, lr=1e-3,
                       recipe=Recipe(precision="bf16" if DEVICE == "cuda" else "fp32", batch_size=BATCH))
    split = DeviceSplit(generate(task, 4 * BATCH, seed=0), DEVICE, "train", seq_len, task.vocab_size)
    torch.manual_seed(0)
    trainer = Trainer(config, DEVICE, "auto", steps_total=1000, cuda_graphs=graphs)
    if compiled:
        trainer.model.forward = torch.compile(trainer.model.forward)
    order = torch.Generator().manual_seed(0)
    batches = [torch.randint(len(split), (BATCH,), generator=order).to(DEVICE) for _ in range(8 + STEPS)]
    start = time.perf_counter()
    losses = [trainer.train_step(split, batch) for batch in batches[:8]]  # warm-up: compile, capture
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    losses += [trainer.train_step(split, batch) for batch in batches[8:]]
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return BATCH * seq_len * STEPS / seconds / 1e6, warm, [round(float(loss), 3) for loss in losses[:3]]


if "--opaque" in sys.argv:
    opaque_to_compile()
    sys.argv.remove("--opaque")
for case in sys.argv[1:] or ["rebased:128:512"]:
    arch, d_model, seq_len = case.split(":")
    for compiled, graphs in [(False, True), (True, True), (False, False), (True, False)]:
        try:
            rate, warm, first_losses = measure(arch, int(d_model), int(seq_len), compiled, graphs and DEVICE == "cuda")
            print(f"{case} compiled={compiled} cuda_graphs={graphs}: {rate:.2f} M tokens/s (warm-up {warm:.0f} s), "
                  f"first losses {first_losses}", flush=True)
        except Exception as error:  # a failure to compile or capture is a result too
            print(f"{case} compiled={compiled} cuda_graphs={graphs}: failed: {type(error).__name__}: {str(error)[:300]}",
                  flush=True)
