"""Published numbers and the paper figures mqar can redraw.

Numbers are copied from the papers (see shared REFERENCE.md); nothing here is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

# ReBased (Aksenov et al., ACL 2024), Table 1: kernel ablation at seq_len 256, 32 kv pairs, vocab 8192,
# mean ± std over 5 seeds of the best validation accuracy, best lr. Keyed by mqar's arch names.
REBASED_TABLE1_TASK = {"seq_len": 256, "num_kv_pairs": 32, "vocab_size": 8192}
REBASED_TABLE1_D_MODELS = (16, 24, 32, 48)
REBASED_TABLE1 = {
    #                  d=16          d=24          d=32          d=48
    "based":          ((0.06, 0.02), (0.45, 0.15), (0.82, 0.06), (0.99, 0.00)),
    "rebased-x2":     ((0.05, 0.05), (0.47, 0.08), (0.64, 0.42), (0.99, 0.00)),
    "rebased-norm":   ((0.09, 0.04), (0.39, 0.24), (0.84, 0.09), (0.97, 0.02)),
    "rebased-gamma":  ((0.02, 0.02), (0.35, 0.22), (0.71, 0.09), (0.98, 0.03)),
    "rebased-affine": ((0.06, 0.01), (0.51, 0.08), (0.89, 0.03), (0.99, 0.00)),
    "rebased":        ((0.09, 0.05), (0.59, 0.06), (0.86, 0.08), (0.99, 0.00)),
}
# How the paper writes each kernel (for table rows and legends).
KERNEL_LABELS = {
    "based": "Based (1 + s + s²/2)",
    "rebased-x2": "x²",
    "rebased-norm": "norm(x)²",
    "rebased-gamma": "(γ·x)²",
    "rebased-affine": "(γ·x+β)²",
    "rebased": "ReBased (γ·norm(x)+β)²",
}


def rebased_table1() -> pd.DataFrame:
    """The published Table 1 as a frame: arch, d_model, seq_len, num_kv_pairs, vocab_size, mean, std."""
    rows = []
    for arch, cells in REBASED_TABLE1.items():
        for d_model, (mean, std) in zip(REBASED_TABLE1_D_MODELS, cells):
            rows.append({"arch": arch, "d_model": d_model, **REBASED_TABLE1_TASK, "mean": mean, "std": std})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class FigurePreset:
    """A paper figure: the sweep behind it (full and reduced presets in sweeps/) and how to draw it."""

    name: str  # also the sweep: sweeps/<name>.toml is the paper's grid, sweeps/<name>-reduced.toml the smaller one
    title: str
    metric: str  # the paper's reduction, see mqar.report.aggregate
    arch_order: tuple[str, ...]
    reference: Optional[str] = None  # name of published numbers to show beside ours
    description: str = ""

    def sweep_name(self, scale: str) -> str:
        """The sweep preset behind the figure at `scale` ("full" or "reduced")."""
        return self.name if scale == "full" else f"{self.name}-reduced"


FIGURES: dict[str, FigurePreset] = {
    "rebased-figure1": FigurePreset(
        name="rebased-figure1",
        title="ReBased Figure 1: MQAR accuracy vs model dimension",
        metric="best-valid",
        arch_order=("rebased", "based", "rwkv", "mamba", "conv-attention", "attention"),
        description="one panel per seq_len (128..2048, kv = seq_len/4 from 256 on), d_model 64..512, best lr",
    ),
    "rebased-table1": FigurePreset(
        name="rebased-table1",
        title="ReBased Table 1: kernel ablation, seq_len 256, 32 kv pairs",
        metric="best-valid",
        arch_order=tuple(REBASED_TABLE1),
        reference="rebased-table1",
        description="six feature maps × d_model 16/24/32/48, ours beside the published numbers",
    ),
    "zoology-figure2": FigurePreset(
        name="zoology-figure2",
        title="Zoology Figure 2: MQAR accuracy vs model dimension",
        metric="best-valid",
        arch_order=("attention", "based", "rebased", "h3", "hyena", "rwkv-zoology", "base-conv"),
        description="one panel per (seq_len, kv): (64,4) (128,8) (256,16) (512,64), d_model 64..512, max over lr",
    ),
}
SCALES = ("full", "reduced")


def reference_numbers(name: Optional[str]) -> Optional[pd.DataFrame]:
    """Published numbers by name, or None."""
    if name is None:
        return None
    if name == "rebased-table1":
        return rebased_table1()
    raise KeyError(name)
