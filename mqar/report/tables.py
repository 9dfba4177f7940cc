"""Tables of the plotted numbers and of the missing runs: markdown, CSV, and rich for the terminal."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
from rich.table import Table

from mqar.report.aggregate import CELL_COLUMNS, RUN_COLUMNS

POINT_COLUMNS = ["seq_len", "num_kv_pairs", "vocab_size", "arch", "d_model", "lr", "mean", "std", "n_seeds",
                 "n_expected"]


def points_table(points: pd.DataFrame, reference: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The plotted numbers, one row per point; with `reference`, the published mean/std beside ours and the
    difference (ours - paper). Reference cells we have no run for appear with empty 'ours' columns."""
    table = points[POINT_COLUMNS].copy()
    if reference is None:
        return table
    paper = reference[CELL_COLUMNS + ["mean", "std"]].rename(columns={"mean": "paper_mean", "std": "paper_std"})
    table = table.merge(paper, on=CELL_COLUMNS, how="outer")
    table["diff"] = table["mean"] - table["paper_mean"]
    return table.sort_values(CELL_COLUMNS).reset_index(drop=True)


def _cell_text(column: str, value) -> str:
    column = LONG_NAMES.get(column, column)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if column == "lr":
        return f"{value:g}"
    if column == "diff":
        return f"{round(value, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"
    if column in ("mean", "std"):
        return f"{value:.3f}"
    if column in ("paper_mean", "paper_std"):  # published with two decimals
        return f"{value:.2f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def text_rows(table: pd.DataFrame) -> list[list[str]]:
    return [[_cell_text(column, value) for column, value in zip(table.columns, row)]
            for row in table.itertuples(index=False)]


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (no extra dependency); pipes inside cells are escaped."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in text_rows(table)]
    return "\n".join([header, rule, *body]) + "\n"


def to_rich(table: pd.DataFrame, title: str) -> Table:
    rich_table = Table(title=title, show_lines=False)
    for column in table.columns:
        if column == "arch":
            rich_table.add_column(column, no_wrap=True, min_width=14)
        else:
            rich_table.add_column(column, justify="left" if column in ("status", "error") else "right")
    for row in text_rows(table):
        rich_table.add_row(*row)
    return rich_table


def missing_table(missing: pd.DataFrame) -> pd.DataFrame:
    """The runs of the grid without a result, as shown to people."""
    return missing[RUN_COLUMNS + ["status", "error"]].copy()


def missing_summary(missing: pd.DataFrame, total: int) -> str:
    """'12 of 40 runs missing (6 pending, 4 absent, 2 failed)', or '' for a complete grid."""
    if missing.empty:
        return ""
    counts = missing["status"].value_counts()
    detail = ", ".join(f"{int(count)} {status}" for status, count in counts.items())
    return f"{len(missing)} of {total} runs missing ({detail})"


SHORT_NAMES = {"seq_len": "L", "num_kv_pairs": "kv", "vocab_size": "vocab", "d_model": "d", "n_seeds": "n",
               "n_expected": "of", "paper_mean": "paper", "paper_std": "±"}
LONG_NAMES = {short: long for long, short in SHORT_NAMES.items()}


def compact(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    """For an 80-column terminal: drop the task columns that hold one value (returned, for the title) and use
    short headers. The files keep every column."""
    constants = {}
    for column in ("seq_len", "num_kv_pairs", "vocab_size"):
        if column in table and table[column].nunique(dropna=False) == 1 and len(table) > 1:
            constants[column] = table[column].iloc[0]
    return table.drop(columns=list(constants)).rename(columns=SHORT_NAMES), constants
