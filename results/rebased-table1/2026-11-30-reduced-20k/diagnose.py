"""Why the 20k-example reduced protocol fails: too few steps, with memorisation during the plateau; not a kernel. Reads the stores, prints the
numbers quoted in README.md and draws diagnosis.png (train and valid loss against epoch, 20k vs 100k examples).

Run from the repository root: python results/rebased-table1/2026-11-30-reduced-20k/diagnose.py
"""

import math
import sqlite3
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
REDUCED = HERE / "mqar.db"  # 20,000 training examples, 32 epochs
FULL_CELL = HERE.parents[1] / "rebased-table1-cell" / "mqar.db"  # 100,000 examples, 64 epochs (issue 3)
CHANCE = math.log(4096)  # the loss of a uniform guess over the 4,096 values
MARGIN = 0.05


def curves(db: Path, where: str = "1") -> dict:
    con = sqlite3.connect(db)
    runs = con.execute(f"select id, arch, d_model, lr, seed, best_valid_accuracy from runs where {where}").fetchall()
    return {run: con.execute("select epoch, train_loss, valid_loss from epochs where run_id = ? order by epoch",
                             (run[0],)).fetchall() for run in runs}


def memorised(curve) -> bool:
    """Some epoch with the training loss below chance while the validation loss is above it."""
    return any(train < CHANCE - MARGIN and valid > CHANCE + MARGIN for _, train, valid in curve)


for name, db in (("20k examples (this sweep)", REDUCED), ("100k examples (rebased-table1-cell)", FULL_CELL)):
    runs = curves(db)
    stuck = [curve for run, curve in runs.items() if run[5] < 0.05]
    print(f"{name}: {len(runs)} runs, {sum(memorised(c) for c in runs.values())} memorise "
          f"(train loss < chance - {MARGIN} while valid loss > chance + {MARGIN}); "
          f"{sum(run[5] > 0.5 for run in runs)} reach 0.5 valid accuracy; "
          f"max valid loss over all runs {max(v for c in runs.values() for _, _, v in c):.3f} (chance {CHANCE:.3f})")
    if stuck:
        print(f"  {len(stuck)} runs never pass 0.05: median lowest train loss "
              f"{sorted(min(t for _, t, _ in c) for c in stuck)[len(stuck) // 2]:.3f}, median highest valid loss "
              f"{sorted(max(v for _, _, v in c) for c in stuck)[len(stuck) // 2]:.3f}")

figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for axis, (title, db, where, steps_per_epoch) in zip(axes, (
    ("20k examples (40 steps/epoch): d_model 48, lr 3e-3", REDUCED, "d_model = 48 and lr = 0.003 and arch = 'rebased'",
     math.ceil(20_000 / 512)),
    ("100k examples (196 steps/epoch): d_model 48", FULL_CELL, "d_model = 48 and arch = 'rebased'",
     math.ceil(100_000 / 512)),
)):
    for (_, arch, d, lr, seed, best), curve in curves(db, where).items():
        epochs = [e * steps_per_epoch for e, _, _ in curve]
        line, = axis.plot(epochs, [t for _, t, _ in curve], label=f"{arch} lr {lr:g} seed {seed}: train")
        axis.plot(epochs, [v for _, _, v in curve], "--", color=line.get_color(), label="valid")
    axis.axhline(CHANCE, color="grey", lw=0.8)
    axis.axvline(32 * math.ceil(20_000 / 512), color="grey", ls=":", lw=0.8)  # where the 20k protocol ends
    axis.set(title=title, xlabel="optimiser steps (dotted: end of the 20k protocol)", ylim=(0, 9.2), xlim=(0, 2500))
    axis.legend(fontsize=7)
axes[0].set_ylabel("loss at query positions (grey: chance)")
figure.suptitle("ReBased on Table 1's task: on 20k examples the train loss falls below chance while the valid loss "
                "rises above it,\n"
                "and the protocol ends after 1,250 steps (the paper trains up to 12,500)", fontsize=9)
figure.tight_layout()
figure.savefig(HERE / "diagnosis.png", dpi=120)
print("wrote", HERE / "diagnosis.png")
