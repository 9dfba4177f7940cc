"""Summarise and plot the five rounds: one panel per cell, colour = training path, one line per seed.
Usage: python plot.py (from this folder; reads round*/*.json, writes curves.png and summary.md)."""
import json
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
# (round, variant in the file name) -> the path it measured. Rounds 1-2 ran mqar source 3088371253fc (main 68f930a),
# rounds 3-5 3694cbdc020b, which has the LayerNorm change (mqar.models.norm): "before" / "after" below.
PATHS = {
    (1, "fp32"): "fp32 (default)",
    (2, "fp32"): "fp32 (default)",  # the same run as round 1's (same config and seed): the same curve, bit for bit
    (4, "fp32"): "fp32 (default)",
    (1, "bf16c"): "bf16 + compile, before",
    (2, "bf16c+norm-fp32"): "bf16 + compile, all norms fp32 (patch)",
    (3, "bf16c"): "bf16 + compile, after",
    (4, "bf16c"): "bf16 + compile, after",
    (2, "bf16"): "bf16, no compile, before",
    (5, "bf16"): "bf16, no compile, after",
}
COLOURS = {
    "fp32 (default)": "tab:blue",
    "bf16 + compile, before": "tab:red",
    "bf16 + compile, all norms fp32 (patch)": "tab:purple",
    "bf16 + compile, after": "tab:orange",
    "bf16, no compile, before": "tab:olive",
    "bf16, no compile, after": "tab:green",
}
CELLS = ("table1-based-d48", "table1-rebased-d48", "figure1-rebased-d128")

runs = defaultdict(dict)  # (cell, path) -> {seed: result}
for file in sorted(HERE.glob("round*/*.json")):
    if file.stem.endswith("-eval") or file.parent.name.startswith("bench") or "bench" in file.stem:
        continue
    round_number = int(file.parent.name.removeprefix("round"))
    cell, rest = file.stem.split("-s", 1)
    seed, variant = rest.split("-", 1)
    runs[(cell, PATHS[(round_number, variant)])][int(seed)] = json.loads(file.read_text())

figure, axes = plt.subplots(1, len(CELLS), figsize=(5.2 * len(CELLS), 4.6), squeeze=False)
lines = [
    "| cell | path | seeds | reached 0.99 | best valid accuracy per seed | mean ± sd | epochs to 0.99 (median) |",
    "|---|---|---|---|---|---|---|",
]
for axis, cell in zip(axes[0], CELLS):
    for path, colour in COLOURS.items():
        results = runs.get((cell, path))
        if not results:
            continue
        for index, (seed, result) in enumerate(sorted(results.items())):
            curve = result["curve"]
            axis.plot([e["epoch"] for e in curve], [e["valid_accuracy"] for e in curve], color=colour, alpha=0.8,
                      linewidth=1, label=path if index == 0 else None)
        best = [results[seed]["best_valid_accuracy"] for seed in sorted(results)]
        stopped = [r["epochs"] for r in results.values() if r["stopped_early"]]
        per_seed = ", ".join(f"{seed}: {results[seed]['best_valid_accuracy']:.3f}" for seed in sorted(results))
        spread = f"{statistics.mean(best):.3f} ± {statistics.stdev(best):.3f}" if len(best) > 1 else f"{best[0]:.3f}"
        median = f"{statistics.median(stopped):g}" if stopped else "–"
        lines.append(f"| {cell} | {path} | {len(best)} | {len(stopped)} of {len(best)} | {per_seed} | {spread} | "
                     f"{median} |")
    axis.set_title(cell)
    axis.set_xlabel("epoch")
    axis.set_ylim(-0.02, 1.02)
axes[0][0].set_ylabel("validation accuracy")
handles = {label: line for axis in axes[0] for line, label in zip(*axis.get_legend_handles_labels())}
figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8)
figure.tight_layout(rect=(0, 0.12, 1, 1))
figure.savefig(HERE / "curves.png", dpi=120)
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
