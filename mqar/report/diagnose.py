"""Learning-curve diagnoses that a report states beside its numbers.

Memorisation: a run whose training loss falls below chance while its validation loss rises above it has fit its
training examples instead of learning recall. Chance is the loss of a uniform guess over the values a query can
have, ln(V/2) for vocabulary V (values are drawn from [V/2, V)). MQAR models first sit on that plateau; with too
few training examples they leave it downwards on the training set only. Found the hard way: a reduced Table-1
protocol with 20,000 examples left 134 of 144 runs at chance, 126 of them with this signature, where 100,000
examples learn (results/rebased-table1/2026-11-30-reduced-20k/).
"""

from __future__ import annotations

import math
from typing import Optional

import pandas as pd

MARGIN = 0.05  # nats; the plateau's own noise is ~0.01-0.03


def chance_loss(vocab_size: int) -> float:
    """The loss of a uniform guess over the V - V/2 values."""
    return math.log(vocab_size - vocab_size // 2)


def memorising_runs(runs: pd.DataFrame, epochs: pd.DataFrame, margin: float = MARGIN) -> pd.Index:
    """Run ids with an epoch whose training loss is below chance - margin while the validation loss is above
    chance + margin. `runs` needs run_id and vocab_size; `epochs` run_id, train_loss and valid_loss."""
    if epochs.empty:
        return pd.Index([], name="run_id")
    curves = epochs.merge(runs[["run_id", "vocab_size"]].drop_duplicates("run_id"), on="run_id")
    chance = curves["vocab_size"].map(chance_loss)
    signature = (curves["train_loss"] < chance - margin) & (curves["valid_loss"] > chance + margin)
    return pd.Index(curves.loc[signature, "run_id"].unique(), name="run_id")


def memorisation_note(runs: pd.DataFrame, epochs: pd.DataFrame) -> Optional[str]:
    """One line for the report when finished runs memorised, else None."""
    done = runs[runs["status"] == "done"]
    memorised = memorising_runs(done, epochs)  # the merge keeps the curves of finished runs only
    if memorised.empty:
        return None
    return (f"memorisation: {len(memorised)} of {len(done)} finished runs fit their training examples (train loss "
            f"below chance while validation loss rose above it); train on more examples")
