"""Summarise and plot the eight rounds: one panel per cell, colour = training path, one line per seed.
Usage: python plot.py (from this folder; reads round*/*.json and round*/*.jsonl, writes curves.png and summary.md).
Rounds 1-5 capped the epochs (16 or 24, the cosine over the cap) and are summarised from their finished runs (.json).
Rounds 6-8 ran the Figure-1 cell on the paper's 64-epoch schedule; many were cut by the device call's limit, so they
are summarised from their curves (.jsonl) at a horizon every run reached (HORIZON epochs, or an early stop before)."""
import json
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np

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
    (6, "bf16c"): "bf16 + compile, after",
    (7, "fp32"): "fp32 (default)",
    (8, "fp32"): "fp32 (default)",
    (8, "bf16c"): "bf16 + compile, after",
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
LONG_CELL = "figure1-rebased-d128-e64"  # rounds 6-8
HORIZON = 12  # epochs every long run reached (fp32's round-8 runs were cut at 12), or stopped early before
LEFT_PLATEAU = 0.2  # valid accuracy that marks a run off the plateau (chance is ~1/4096; stuck runs stay < 0.04)
EARLY_STOP = 0.99  # the recipe's: a run stops once its valid accuracy exceeds this

def run_name(file):  # round, cell, seed, variant of a run's file (CELL-sSEED-VARIANT.json[l] in roundN/)
    cell, rest = file.stem.rsplit("-s", 1)
    seed, variant = rest.split("-", 1)
    return int(file.parent.name.removeprefix("round")), cell, int(seed), variant


runs = defaultdict(dict)  # (cell, path) -> {seed: result}, rounds 1-5
curves = defaultdict(dict)  # path -> {seed: [valid accuracy per epoch]}, rounds 6-8
for file in sorted(HERE.glob("round*/*.json")):
    if file.stem.endswith("-eval") or "bench" in str(file.relative_to(HERE)):
        continue
    round_number, cell, seed, variant = run_name(file)
    if cell != LONG_CELL:
        runs[(cell, PATHS[(round_number, variant)])][seed] = json.loads(file.read_text())
for file in sorted(HERE.glob("round*/*.jsonl")):
    round_number, cell, seed, variant = run_name(file)
    if cell == LONG_CELL:
        epochs = [json.loads(line) for line in file.read_text().splitlines()]
        curves[PATHS[(round_number, variant)]][seed] = [epoch["valid_accuracy"] for epoch in epochs]

figure, axes = plt.subplots(1, len(CELLS) + 1, figsize=(5.2 * (len(CELLS) + 1), 4.6), squeeze=False)
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

long_lines = [
    f"| path | seeds | left the plateau (valid accuracy > {LEFT_PLATEAU}) | epoch it did: median (range) | "
    f"best valid accuracy by epoch {HORIZON}: mean ± sd | reached {EARLY_STOP} (epoch) | best valid accuracy, "
    "epochs run (cut: call's limit) |",
    "|---|---|---|---|---|---|---|",
]
axis = axes[0][len(CELLS)]
for path, colour in COLOURS.items():
    per_seed = curves.get(path)
    if not per_seed:
        continue
    for index, (seed, accuracy) in enumerate(sorted(per_seed.items())):
        axis.plot(range(1, len(accuracy) + 1), accuracy, color=colour, alpha=0.8, linewidth=1,
                  label=path if index == 0 else None)
    left = {seed: next((epoch for epoch, a in enumerate(acc, 1) if a > LEFT_PLATEAU), None)
            for seed, acc in per_seed.items()}
    left_epochs = [epoch for epoch in left.values() if epoch is not None]
    by_horizon = [max(acc[:HORIZON]) for acc in per_seed.values()]
    reached = {seed: next((epoch for epoch, a in enumerate(acc, 1) if a > EARLY_STOP), None)
               for seed, acc in per_seed.items()}
    reached_text = ", ".join(f"{seed}: {epoch}" for seed, epoch in sorted(reached.items()) if epoch) or "–"
    runs_text = ", ".join(f"{seed}: {max(acc):.3f} @{len(acc)}{'' if reached[seed] else ' (cut)'}"
                          for seed, acc in sorted(per_seed.items()))
    long_lines.append(
        f"| {path} | {len(per_seed)} | {len(left_epochs)} of {len(per_seed)} | "
        f"{statistics.median(left_epochs):g} ({min(left_epochs)}-{max(left_epochs)}) | "
        f"{statistics.mean(by_horizon):.3f} ± {statistics.stdev(by_horizon):.3f} | "
        f"{sum(1 for e in reached.values() if e)} of {len(per_seed)} ({reached_text}) | {runs_text} |")
fp32, bf16c = (np.array([max(acc[:HORIZON]) for acc in curves[path].values()])
               for path in ("fp32 (default)", "bf16 + compile, after"))
pooled, difference = np.concatenate([fp32, bf16c]), fp32.mean() - bf16c.mean()
relabelled = np.random.default_rng(0).permuted(np.tile(pooled, (200_000, 1)), axis=1)
permuted = relabelled[:, :len(fp32)].mean(axis=1) - relabelled[:, len(fp32):].mean(axis=1)
p_value = float(np.mean(np.abs(permuted) >= abs(difference) - 1e-12))
mann_whitney_u = sum(float(a > b) + 0.5 * float(a == b) for a in fp32 for b in bf16c)
long_lines.append(f"\nBest by epoch {HORIZON}, fp32 − bf16c: {difference:+.4f}; two-sided permutation test (200,000 "
                  f"relabellings, seed 0): p = {p_value:.2f}; Mann-Whitney U = {mann_whitney_u:g} of "
                  f"{len(fp32) * len(bf16c)}.")
axis.axvline(HORIZON, color="grey", linestyle=":", linewidth=1)
axis.set_title(f"{LONG_CELL} (paper's 64-epoch schedule)")
axis.set_xlabel("epoch")
axis.set_ylim(-0.02, 1.02)
lines += ["", f"{LONG_CELL}: rounds 6-8, the paper's 64-epoch schedule (runs cut by the call's limit keep their "
          "curve; compare at the horizon)", ""] + long_lines
axes[0][0].set_ylabel("validation accuracy")
handles = {label: line for axis in axes[0] for line, label in zip(*axis.get_legend_handles_labels())}
figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8)
figure.tight_layout(rect=(0, 0.12, 1, 1))
figure.savefig(HERE / "curves.png", dpi=120)
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
