"""Figures from aggregated points (see `aggregate.py`). matplotlib with the Agg backend: no display needed.

Every function returns a `matplotlib.figure.Figure` and writes nothing; `save_figure` writes PNG and PDF.
Each line is labelled with its arch (paper numbers with "(paper)"), so tests and readers can count them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

from mqar.report.aggregate import TASK_COLUMNS, sort_archs  # noqa: E402
from mqar.report.state_size import state_size  # noqa: E402

MAX_COLUMNS = 5
PANEL_SIZE = (3.4, 3.0)  # inches per panel
X_AXES = {"d-model": "d_model", "state-size": "state_size"}
METRIC_LABELS = {"test": "test accuracy (at best valid epoch)", "best-valid": "best validation accuracy"}
WARNING_COLOR = "#b00020"


def arch_colors(archs: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per arch, the same in every panel of a figure."""
    palette = plt.get_cmap("tab10").colors
    return {arch: palette[index % len(palette)] for index, arch in enumerate(archs)}


# Our lines' markers, one per arch beside its colour: archs with the same accuracies draw one line over another
# (Based and ReBased in the quick sweep), and only the markers then show both. The paper's lines keep hollow squares.
ARCH_MARKERS = ("o", "^", "v", "D", "P", "X", "<", ">", "h", "*")


def arch_markers(archs: Sequence[str]) -> dict[str, str]:
    """A fixed marker per arch (with arch_colors), the same in every panel of a figure."""
    return {arch: ARCH_MARKERS[index % len(ARCH_MARKERS)] for index, arch in enumerate(archs)}


def panel_tasks(points: pd.DataFrame, panel_by: str = "seq_len") -> list[tuple]:
    """The tasks (seq_len, num_kv_pairs, vocab_size) to draw as panels, ordered by `panel_by` first."""
    order = [panel_by] + [column for column in TASK_COLUMNS if column != panel_by]
    tasks = points[TASK_COLUMNS].drop_duplicates().sort_values(order)
    return [tuple(row) for row in tasks.itertuples(index=False)]


def task_title(task: tuple, panel_by: str = "seq_len", show_vocab: bool = False) -> str:
    seq_len, num_kv_pairs, vocab_size = task
    parts = [f"seq_len {seq_len}", f"kv {num_kv_pairs}"]
    if panel_by == "num_kv_pairs":
        parts.reverse()
    if show_vocab:
        parts.append(f"vocab {vocab_size}")
    return " · ".join(parts)


def with_state_size(points: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add a state_size column; drop (and name) the archs without a formula."""
    points = points.copy()
    points["state_size"] = [
        state_size(arch, d_model, seq_len)
        for arch, d_model, seq_len in zip(points["arch"], points["d_model"], points["seq_len"])
    ]
    dropped = sorted(set(points.loc[points["state_size"].isna(), "arch"]))
    return points[points["state_size"].notna()].astype({"state_size": float}), dropped


def _grid(num_panels: int) -> tuple[Figure, list]:
    rows = math.ceil(num_panels / MAX_COLUMNS)
    columns = math.ceil(num_panels / rows)  # balanced: 6 panels as 2 × 3, not 5 + 1
    figure, axes = plt.subplots(
        rows, columns, figsize=(PANEL_SIZE[0] * columns + 1.6, PANEL_SIZE[1] * rows + 1.1),
        squeeze=False, sharey=True,
    )
    flat = list(axes.flat)
    for unused in flat[num_panels:]:
        figure.delaxes(unused)
    return figure, flat[:num_panels]


def _draw_line(axis, frame: pd.DataFrame, x_column: str, label: str, color, paper: bool = False,
               marker: str = "o") -> None:
    frame = frame.sort_values(x_column)
    means = frame["mean"].to_numpy(dtype=float)
    if "lower" in frame:
        lower, upper = frame["lower"].to_numpy(dtype=float), frame["upper"].to_numpy(dtype=float)
    else:  # published numbers: mean ± std, clipped the same way
        stds = frame["std"].to_numpy(dtype=float)
        lower, upper = np.clip(means - stds, 0, 1), np.clip(means + stds, 0, 1)
    axis.errorbar(
        frame[x_column].to_numpy(dtype=float), means,
        yerr=[np.maximum(means - lower, 0), np.maximum(upper - means, 0)],  # rounding can give -1e-17
        label=label, color=color, marker="s" if paper else marker, markersize=4.5 if marker == "o" or paper else 5.5,
        linestyle="--" if paper else "-", linewidth=1.2 if paper else 1.8, capsize=2.5,
        markerfacecolor="none" if paper else color, alpha=0.85 if paper else 1.0,
    )


def _style_axis(axis, x_column: str, x_values: Sequence[float]) -> None:
    axis.set_ylim(-0.03, 1.03)
    axis.grid(True, alpha=0.3)
    axis.set_xscale("log", base=2)
    if x_column == "state_size":
        # Powers of two as 16k, 32k, ...: log axes' default 2x10^4 labels collide at this width.
        axis.xaxis.set_major_formatter(FuncFormatter(_short_count))
        axis.xaxis.set_minor_formatter(NullFormatter())
    if x_column == "d_model" and len(x_values):
        ticks = sorted(set(x_values))
        axis.set_xticks(ticks)
        axis.set_xticklabels([str(int(tick)) for tick in ticks])
        axis.minorticks_off()
        # Room for the markers at the ends of a log axis.
        axis.set_xlim(min(ticks) / 1.25, max(ticks) * 1.25)


def _short_count(value: float, _position=None) -> str:
    """16384 -> '16k', 1048576 -> '1M' (binary prefixes: the ticks are powers of two)."""
    for size, suffix in ((2**20, "M"), (2**10, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _face_notes(figure: Figure, title: str, notes: Sequence[str]) -> None:
    """Title on top; the warnings (partial grid, reduced protocol) under it in red, so no copy loses them."""
    # figure.text, not suptitle: tight_layout reserves room for a suptitle on top of `rect`, a double margin.
    height = figure.get_figheight()
    texts = [figure.text(0.5, 1 - 0.08 / height, title, ha="center", va="top", fontsize=12)]
    if notes:
        text = " | ".join(notes)
        if len(text) > 110:  # one note per line rather than a line wider than the figure
            text = "\n".join(notes)
        texts.append(figure.text(0.5, 1 - 0.32 / height, text, ha="center", va="top", fontsize=9,
                                 color=WARNING_COLOR))
    _widen_to_fit(figure, texts)


def _widen_to_fit(figure: Figure, texts: Sequence) -> None:
    """A one-panel figure is narrower than its title and notes: widen it rather than clip them at both sides.

    The texts are centred at x = 0.5 in figure fractions, so they stay centred; tight_layout, called after this,
    spreads the panels over the new width.
    """
    renderer = figure.canvas.get_renderer()
    widest = max(text.get_window_extent(renderer).width for text in texts) / figure.dpi
    margin = 0.3  # inches, both sides together
    if widest + margin > figure.get_figwidth():
        figure.set_figwidth(widest + margin)


def _top(figure: Figure, notes: Sequence[str]) -> float:
    """Where the panels may end (figure fraction) below the title and its notes."""
    height = figure.get_figheight()
    lines = 0 if not notes else (1 if len(" | ".join(notes)) <= 110 else len(notes))
    return 1 - (0.38 + 0.16 * lines) / height


def plot_accuracy(
    points: pd.DataFrame,
    *,
    title: str,
    metric: str = "test",
    x_axis: str = "d-model",
    panel_by: str = "seq_len",
    notes: Sequence[str] = (),
    arch_order: Sequence[str] = (),
    reference: Optional[pd.DataFrame] = None,
) -> Figure:
    """Accuracy against model dimension (or state size): one panel per task, one line per arch.

    `reference` (published numbers: arch, d_model, task columns, mean, std) is drawn dashed with hollow markers,
    in the arch's colour, on the panels of its task.
    """
    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {list(X_AXES)}")
    x_column = X_AXES[x_axis]
    notes = list(notes)
    if x_column == "state_size":
        points, dropped = with_state_size(points)
        if dropped:
            notes.append(f"no state-size formula for {', '.join(dropped)}: not drawn")
        if reference is not None:
            reference, _ = with_state_size(reference)
    tasks = panel_tasks(points, panel_by)
    archs = sort_archs(points["arch"], arch_order)
    every_arch = sort_archs(list(archs) + ([] if reference is None else list(reference["arch"])), arch_order)
    colors, markers = arch_colors(every_arch), arch_markers(every_arch)
    show_vocab = points["vocab_size"].nunique() > 1
    figure, axes = _grid(max(len(tasks), 1))
    for axis, task in zip(axes, tasks):
        in_task = points[(points[TASK_COLUMNS] == pd.Series(task, index=TASK_COLUMNS)).all(axis=1)]
        for arch in archs:
            line = in_task[in_task["arch"] == arch]
            if not line.empty:
                _draw_line(axis, line, x_column, arch, colors[arch], marker=markers[arch])
        if reference is not None:
            ref_task = reference[(reference[TASK_COLUMNS] == pd.Series(task, index=TASK_COLUMNS)).all(axis=1)]
            for arch in sort_archs(ref_task["arch"], arch_order):
                _draw_line(axis, ref_task[ref_task["arch"] == arch], x_column, f"{arch} (paper)",
                           colors[arch], paper=True)
        x_values = in_task[x_column].tolist()
        if reference is not None:
            x_values += ref_task[x_column].tolist()
        _style_axis(axis, x_column, x_values)
        axis.set_title(task_title(task, panel_by, show_vocab), fontsize=10)
        axis.set_xlabel("model dimension" if x_column == "d_model" else "recurrent state size (scalars)")
    axes[0].set_ylabel(METRIC_LABELS.get(metric, metric))
    for axis in axes[1:]:
        axis.tick_params(labelleft=True)
    legend = _legend(figure, axes)
    _face_notes(figure, title, notes)
    figure.tight_layout(rect=(0, 0, _right(figure, legend), _top(figure, notes)))
    return figure


def plot_by_arch(
    points: pd.DataFrame,
    *,
    title: str,
    reference: pd.DataFrame,
    metric: str = "best-valid",
    notes: Sequence[str] = (),
    arch_order: Sequence[str] = (),
    arch_labels: Optional[dict[str, str]] = None,
) -> Figure:
    """One panel per arch, ours (solid) beside the published numbers (dashed), against model dimension.

    For a single-task ablation like ReBased Table 1, where six kernels in one panel would hide each other.
    """
    archs = sort_archs(list(points["arch"]) + list(reference["arch"]), arch_order)
    colors = arch_colors(archs)
    figure, axes = _grid(len(archs))
    for axis, arch in zip(axes, archs):
        ours = points[points["arch"] == arch]
        paper = reference[reference["arch"] == arch]
        if not ours.empty:
            _draw_line(axis, ours, "d_model", "mqar", colors[arch])
        if not paper.empty:
            _draw_line(axis, paper, "d_model", "paper", "0.35", paper=True)
        _style_axis(axis, "d_model", ours["d_model"].tolist() + paper["d_model"].tolist())
        label = (arch_labels or {}).get(arch)
        axis.set_title(arch if label is None else f"{arch}: {label}", fontsize=10)
        axis.set_xlabel("model dimension")
        axis.tick_params(labelleft=True)
        if ours.empty:
            axis.text(0.5, 0.5, "no finished runs", transform=axis.transAxes, ha="center", color=WARNING_COLOR)
    axes[0].set_ylabel(METRIC_LABELS.get(metric, metric))
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        [plt.Line2D([], [], color="0.1", marker="o", linewidth=1.8),
         plt.Line2D([], [], color="0.35", marker="s", markerfacecolor="none", linestyle="--")],
        ["mqar (ours)", "paper"], loc="upper right", bbox_to_anchor=(0.995, 0.93), frameon=False,
    )
    _face_notes(figure, title, notes)
    figure.tight_layout(rect=(0, 0, 0.88, _top(figure, notes)))
    return figure


def _legend(figure: Figure, axes: Sequence):
    """One legend for the figure, right of the panels, each label once (None without labels)."""
    seen: dict[str, object] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        return figure.legend(list(seen.values()), list(seen), loc="center right", frameon=False, fontsize=9)
    return None


def _right(figure: Figure, legend, default: float = 0.86) -> float:
    """Where the panels may end (figure fraction) left of the legend: a fixed share of a narrow figure is less
    than a long arch name needs, and the legend would cover the last panel's points."""
    if legend is None:
        return default
    width = legend.get_window_extent(figure.canvas.get_renderer()).width / figure.dpi
    return min(default, 1 - (width + 0.1) / figure.get_figwidth())


def plot_learning_curves(
    curves: pd.DataFrame,
    *,
    title: str,
    notes: Sequence[str] = (),
    arch_order: Sequence[str] = (),
    panel_by: str = "seq_len",
) -> Figure:
    """Validation accuracy against epoch: one panel per (d_model, task), one colour per arch, one thin line per
    seed. `curves` is the epochs table joined with the runs' arch, d_model, seed and task columns.

    Several tasks: rows are widths, columns tasks. One task: the widths side by side, wrapped at five."""
    tasks = panel_tasks(curves, panel_by)
    d_models = sorted(curves["d_model"].unique())
    archs = sort_archs(curves["arch"], arch_order)
    colors = arch_colors(archs)
    panels = [(d_model, task) for d_model in d_models for task in tasks]
    if len(tasks) == 1:
        figure, axes = _grid(len(panels))
        columns = math.ceil(len(panels) / math.ceil(len(panels) / MAX_COLUMNS))
    else:
        columns = len(tasks)
        figure, grid_axes = plt.subplots(
            len(d_models), columns, figsize=(3.0 * columns + 1.6, 2.4 * len(d_models) + 1.1), squeeze=False,
            sharey=True,
        )
        axes = list(grid_axes.flat)
    last_row = (len(panels) - 1) // columns
    for index, ((d_model, task), axis) in enumerate(zip(panels, axes)):
        cell = curves[(curves["d_model"] == d_model)
                      & (curves[TASK_COLUMNS] == pd.Series(task, index=TASK_COLUMNS)).all(axis=1)]
        for arch in archs:
            for seed_index, (_, run) in enumerate(cell[cell["arch"] == arch].groupby("run_id")):
                run = run.sort_values("epoch")
                axis.plot(run["epoch"], run["valid_accuracy"], color=colors[arch], linewidth=1.1, alpha=0.8,
                          label=arch if seed_index == 0 else None)
        axis.set_ylim(-0.03, 1.03)
        axis.grid(True, alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: a run of 13 drew 2.5, 7.5, ...
        axis.set_title(f"d_model {d_model} · {task_title(task, panel_by)}", fontsize=9)
        axis.tick_params(labelleft=True)
        if index // columns == last_row:
            axis.set_xlabel("epoch")
        if index % columns == 0:
            axis.set_ylabel("valid accuracy")
    legend = _legend(figure, axes)
    _face_notes(figure, title, notes)
    figure.tight_layout(rect=(0, 0, _right(figure, legend), _top(figure, notes)))
    return figure


def save_figure(figure: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `<stem>.png` (150 dpi) and `<stem>.pdf` into out_dir; close the figure; return the paths.

    The PDF carries no creation date, so redrawing a committed figure from the same store changes no bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(figure)
    return paths
