"""Issue 7: where a compiled training step's GPU time goes (rebased d128 L512 bf16, CUDA graph off so the profiler
sees kernels; the graphed rate is measured beside it). Usage: python3 prof_train_compiled.py OUT.txt"""
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mqar.data import TaskSpec, generate
from mqar.runs import Recipe, RunConfig
from mqar.train import DeviceSplit, Trainer

task = TaskSpec(seq_len=512, num_kv_pairs=128)
config = RunConfig(task=task, arch="rebased", d_model=128, lr=1e-3, recipe=Recipe(precision="bf16"))
split = DeviceSplit(generate(task, 2048, seed=0), "cuda", "train", 512, task.vocab_size)
with open(sys.argv[1], "w") as out:
    for graphs in (True, False):
        trainer = Trainer(config, "cuda", "auto", steps_total=100, cuda_graphs=graphs, compile_model=True)
        order = torch.Generator().manual_seed(0)
        step = lambda: trainer.train_step(split, torch.randint(len(split), (512,), generator=order).cuda())  # noqa
        for _ in range(8):
            step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(20):
            step()
        torch.cuda.synchronize()
        out.write(f"compiled, cuda_graphs={graphs}: {(time.perf_counter() - start) / 20 * 1e3:.2f} ms/step\n")
        if not graphs:
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    step()
                torch.cuda.synchronize()
            out.write(prof.key_averages().table(sort_by="self_device_time_total", row_limit=35,
                                                max_name_column_width=70) + "\n")
