"""Issue 7, before --compile could become the default on CUDA: every registered arch, 8 training steps (bf16, CUDA
graph on, d_model 48, L 256, kv 32, batch 64) compiled vs not, from the same seed: does it compile, how far apart
are the losses, and the tokens/s of each. Run from main's root on a GPU; one line per arch."""
import time

import torch

from mqar.data import TaskSpec, generate
from mqar.models.registry import arch_names
from mqar.runs import Recipe, RunConfig
from mqar.train import DeviceSplit, Trainer

task = TaskSpec(seq_len=256, num_kv_pairs=32)
arrays = generate(task, 1024, seed=0)
split = DeviceSplit(arrays, "cuda", "train", 256, task.vocab_size)
batches = [torch.randint(1024, (64,), generator=torch.Generator().manual_seed(i)).cuda() for i in range(28)]
for arch in arch_names():
    results = {}
    for compile_model in (False, True):
        try:
            config = RunConfig(task=task, arch=arch, d_model=48, lr=3e-3, recipe=Recipe(precision="bf16",
                                                                                        batch_size=64))
            torch.manual_seed(0)
            trainer = Trainer(config, "cuda", "auto", steps_total=28, cuda_graphs=True, compile_model=compile_model)
            losses = [trainer.train_step(split, batch).item() for batch in batches[:8]]
            torch.cuda.synchronize()
            start = time.perf_counter()
            for batch in batches[8:]:
                trainer.train_step(split, batch)
            torch.cuda.synchronize()
            results[compile_model] = (losses, 64 * 256 * 20 / (time.perf_counter() - start) / 1e6)
        except Exception as error:
            results[compile_model] = (None, f"{type(error).__name__}: {str(error)[:150]}")
    (eager, eager_rate), (compiled, compiled_rate) = results[False], results[True]
    if eager is None or compiled is None:
        print(f"{arch}: eager {eager_rate if eager is None else 'ok'}; compiled "
              f"{compiled_rate if compiled is None else 'ok'}", flush=True)
        continue
    worst = max(abs(a - b) / max(abs(b), 1e-9) for a, b in zip(compiled, eager))
    print(f"{arch}: max rel loss diff over 8 steps {worst:.1e}; {eager_rate:.2f} -> {compiled_rate:.2f} M tokens/s",
          flush=True)
