"""Overlay the validation-accuracy curves of run.sh's runs: one panel per cell, colour = variant, line = seed.
Usage: python plot.py (from this folder; reads *.json, writes curves.png and summary.md)."""
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
VARIANTS = {"fast-fp32": "tab:blue", "fast-bf16": "tab:orange", "plain-fp32": "tab:green"}
runs = defaultdict(list)  # cell -> [(seed, variant, result)]
for path in sorted(HERE.glob("*.json")):
    cell, rest = path.stem.split("-s", 1)  # e.g. table1-rebased-d48 and 0-fast-fp32
    seed, variant = rest.split("-", 1)
    runs[cell].append((int(seed), variant, json.loads(path.read_text())))

figure, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
lines = ["| cell | seed | variant | best valid acc (epoch) | test acc | epochs | tokens/s (4 runs sharing one GPU) |",
         "|---|---|---|---|---|---|---|"]
for axis, (cell, results) in zip(axes[0], sorted(runs.items())):
    for seed, variant, result in sorted(results, key=lambda item: (item[0], item[1])):
        curve = result["curve"]
        axis.plot([e["epoch"] for e in curve], [e["valid_accuracy"] for e in curve], color=VARIANTS[variant],
                  linestyle="-" if seed == 0 else "--", label=f"{variant} seed {seed}")
        lines.append(f"| {cell} | {seed} | {variant} | {result['best_valid_accuracy']:.4f} ({result['best_epoch']}) | "
                     f"{result['test_accuracy']:.4f} | {result['epochs']} | {result['tokens_per_s'] / 1e6:.2f} M |")
    axis.set_title(cell)
    axis.set_xlabel("epoch")
    axis.set_ylim(-0.02, 1.02)
axes[0][0].set_ylabel("validation accuracy")
axes[0][-1].legend(fontsize=7, loc="lower right")
figure.tight_layout()
figure.savefig(HERE / "curves.png", dpi=120)
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
