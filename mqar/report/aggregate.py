"""From one row per run to one value per plotted point: the paper's reduction, on plain DataFrames.

The input is the frame `mqar.results.load(store)` returns (one row per (sweep, run)); nothing here reads a store,
so every rule below is testable on a hand-made frame.

The reduction (ReBased Figure 1, see shared REFERENCE.md):
- a *cell* is one (task, arch, d_model); a task is (seq_len, num_kv_pairs, vocab_size);
- within a cell, each learning rate gets a *selection score*: the mean over seeds of the best validation accuracy;
  the lr with the highest score is kept (ties go to the smaller lr, so the choice is deterministic);
- the cell's value is the mean over seeds, at that lr, of the chosen metric, with the standard deviation over
  the same seeds as its error bar, clipped to [0, 1] when drawn.

Two metrics:
- ``test`` (default): test accuracy measured at the epoch of best validation accuracy. The lr is chosen on
  validation data and the number reported comes from a split the choice never saw.
- ``best-valid``: the best validation accuracy over epochs, the paper's convention. The same numbers chose the
  lr, so it is biased upwards a little; use it to compare with published figures.

The std is the sample std over seeds (ddof=1), as the ReBased code's figure notebook computes it (pandas' `.std()`
in corl-team/rebased `main_fig_parsing.ipynb`), so error bars compare with the published ones; the population std
read 11 % low at 5 seeds and 29 % low at 2. With one seed it is undefined (NaN): no error bar and an empty cell,
rather than a bar of 0 that looks like agreement between seeds.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from mqar.errors import UserError

METRICS = {"test": "test_accuracy", "best-valid": "best_valid_accuracy"}
SELECTION_COLUMN = "best_valid_accuracy"
TASK_COLUMNS = ["seq_len", "num_kv_pairs", "vocab_size"]
CELL_COLUMNS = TASK_COLUMNS + ["arch", "d_model"]
RUN_COLUMNS = CELL_COLUMNS + ["lr", "seed"]
DONE = "done"


def metric_column(metric: str) -> str:
    """The results column behind a metric name (`test` or `best-valid`)."""
    try:
        return METRICS[metric]
    except KeyError:
        raise UserError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}") from None


def unique_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run id: a run listed in two sweeps counts once (the first listing is kept)."""
    return runs.drop_duplicates("run_id", keep="first")


def finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """unique_runs() that have finished (status done): the runs the numbers rest on."""
    runs = unique_runs(runs)
    return runs[runs["status"] == DONE]


def _sample_std(values: pd.Series) -> float:
    """The sample std (ddof=1) of a cell's seeds; NaN for one seed (see the module's docstring)."""
    values = values.to_numpy(dtype=float)
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def _per_lr(done: pd.DataFrame, value_column: str) -> pd.DataFrame:
    """Per (cell, lr) of finished runs: the selection score and the metric's mean/std over seeds, and n_seeds."""
    return (
        done.groupby(CELL_COLUMNS + ["lr"], sort=True)
        .agg(
            selection_score=(SELECTION_COLUMN, "mean"),
            mean=(value_column, "mean"),
            std=(value_column, _sample_std),
            n_seeds=("seed", "size"),
        )
        .reset_index()
    )


def aggregate_points(
    runs: pd.DataFrame, metric: str = "test", expected: Optional[pd.DataFrame] = None
) -> pd.DataFrame:
    """One row per cell (task, arch, d_model): the chosen lr and the mean/std over seeds of `metric` there.

    Columns: seq_len, num_kv_pairs, vocab_size, arch, d_model, lr, mean, std, lower, upper, n_seeds,
    n_expected, selection_score, lrs (the lrs with at least one finished run, sorted).
    `n_seeds` counts finished runs at the chosen lr; `n_expected` counts all runs of the grid at that lr,
    finished or not, so `n_seeds < n_expected` marks a point that rests on fewer seeds than planned. Given
    `expected` (the planned grid, as for missing_runs), its runs that the store does not hold count too.
    Cells without any finished run do not appear (the missing-run table lists them).
    """
    value_column = metric_column(metric)
    runs = unique_runs(runs)
    done = finished_runs(runs)
    columns = CELL_COLUMNS + [
        "lr", "mean", "std", "lower", "upper", "n_seeds", "n_expected", "selection_score", "lrs",
    ]
    if done.empty:
        return pd.DataFrame(columns=columns)

    per_lr = _per_lr(done, value_column)
    # Best lr per cell: highest score, then the smaller lr on a tie.
    per_lr = per_lr.sort_values(CELL_COLUMNS + ["selection_score", "lr"], ascending=[True] * 5 + [False, True])
    best = per_lr.groupby(CELL_COLUMNS, sort=True).head(1).copy()

    # A figure's grid may have runs the store never saw (another sweep stored the rest): a point with 1 of its 2
    # seeds is '1 of 2', not '1 of 1'.
    grid = runs[["run_id"] + RUN_COLUMNS]
    if expected is not None and not expected.empty:
        grid = pd.concat([grid, expected.loc[~expected["run_id"].isin(runs["run_id"]), ["run_id"] + RUN_COLUMNS]])
    planned = grid.groupby(CELL_COLUMNS + ["lr"]).size().rename("n_expected").reset_index()
    best = best.merge(planned, on=CELL_COLUMNS + ["lr"], how="left")
    lrs_tried = done.groupby(CELL_COLUMNS)["lr"].agg(lambda lrs: tuple(sorted(set(lrs)))).rename("lrs")
    best = best.merge(lrs_tried.reset_index(), on=CELL_COLUMNS, how="left")

    spread = best["std"].fillna(0.0)  # one seed: no bar
    best["lower"] = (best["mean"] - spread).clip(0.0, 1.0)
    best["upper"] = (best["mean"] + spread).clip(0.0, 1.0)
    best["n_seeds"] = best["n_seeds"].astype(int)
    best["n_expected"] = best["n_expected"].astype(int)
    return best[columns].sort_values(CELL_COLUMNS).reset_index(drop=True)


def per_lr_table(runs: pd.DataFrame, points: pd.DataFrame, metric: str = "test") -> pd.DataFrame:
    """Every (cell, lr) with a finished run: the metric's mean/std over seeds, each seed's value, and whether the
    point kept that lr. The plotted numbers hide how much a cell depends on its lr; this shows it.

    Columns: CELL_COLUMNS, lr, mean, std, n_seeds, seeds ("seed: value, ..." in seed order), chosen.
    """
    value_column = metric_column(metric)
    done = finished_runs(runs)
    columns = CELL_COLUMNS + ["lr", "mean", "std", "n_seeds", "seeds", "chosen"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    seeds = (
        done.sort_values("seed").groupby(CELL_COLUMNS + ["lr"], sort=True)[["seed", value_column]]
        .apply(lambda group: ", ".join(f"{seed}: {value:.3f}" for seed, value in group.itertuples(index=False)))
        .rename("seeds")
        .reset_index()
    )
    table = _per_lr(done, value_column).merge(seeds, on=CELL_COLUMNS + ["lr"])
    chosen = points[CELL_COLUMNS + ["lr"]].assign(chosen=True)
    table = table.merge(chosen, on=CELL_COLUMNS + ["lr"], how="left")
    table["chosen"] = table["chosen"].eq(True)
    return table[columns].sort_values(CELL_COLUMNS + ["lr"]).reset_index(drop=True)


def best_runs(runs: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """The finished runs behind the plotted points (every seed at each cell's chosen lr)."""
    done = finished_runs(runs)
    return done.merge(points[CELL_COLUMNS + ["lr"]], on=CELL_COLUMNS + ["lr"], how="inner")


def missing_runs(runs: pd.DataFrame, expected: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Runs of the grid that have no result: not done (pending, running, failed) or, given `expected` (one row
    per planned run with run_id and the RUN_COLUMNS), absent from the store altogether.

    Columns: RUN_COLUMNS + status + error (the error's message line, for failed runs) + run_id.
    """
    runs = unique_runs(runs)
    not_done = runs[runs["status"] != DONE].copy()
    if "error" not in not_done:
        not_done["error"] = None
    frames = [not_done]
    if expected is not None and not expected.empty:
        absent = expected[~expected["run_id"].isin(runs["run_id"])].copy()
        absent["status"] = "absent"
        absent["error"] = None
        frames.append(absent)
    columns = RUN_COLUMNS + ["status", "error", "run_id"]
    frames = [frame[columns] for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    missing = pd.concat(frames, ignore_index=True)
    missing["error"] = missing["error"].map(_error_message)
    return missing.sort_values(RUN_COLUMNS).reset_index(drop=True)


def _error_message(error: object) -> str:
    """The last non-empty line of a traceback is its message; keep that, short."""
    if error is None or (isinstance(error, float) and np.isnan(error)):
        return ""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    return message if len(message) <= 100 else message[:97] + "..."


def filter_runs(
    runs: pd.DataFrame,
    archs: Optional[Sequence[str]] = None,
    seq_lens: Optional[Sequence[int]] = None,
    num_kv_pairs: Optional[Sequence[int]] = None,
    d_models: Optional[Sequence[int]] = None,
) -> pd.DataFrame:
    """Keep the runs whose arch / task / width are in the given lists (None keeps all). A value that matches no
    run is a UserError that lists the values present, so a typo never gives a silently empty figure."""
    for column, name, wanted in (("arch", "archs", archs), ("seq_len", "seq_lens", seq_lens),
                                 ("num_kv_pairs", "num_kv_pairs", num_kv_pairs), ("d_model", "d_models", d_models)):
        if wanted is None:
            continue
        # archs="based" was read letter by letter ('no runs with arch b, a, s, e, d'), seq_lens=64 was a TypeError
        # and a numpy array of two or more values a ValueError (its truth value is ambiguous).
        if isinstance(wanted, (str, bytes)) or not isinstance(wanted, Iterable):
            raise UserError(f"{name} must be a list, e.g. {name}=[{wanted!r}], got {wanted!r}")
        wanted = list(wanted)
        if not wanted:
            continue
        present = set(runs[column].dropna().tolist())
        unknown = [value for value in wanted if value not in present]
        if unknown:
            raise UserError(
                f"no runs with {column} {', '.join(map(str, unknown))}; "
                f"the runs to report have {column} {', '.join(map(str, sorted(present))) or '(none)'}"
            )
        runs = runs[runs[column].isin(list(wanted))]
    return runs


def status_counts(runs: pd.DataFrame) -> dict[str, int]:
    """How many runs are in each status, e.g. {'done': 40, 'failed': 2, 'pending': 6}."""
    counts = unique_runs(runs)["status"].value_counts()
    return {str(status): int(count) for status, count in sorted(counts.items())}


def sort_archs(archs: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    """Archs in a stable order: those in `preferred` first in its order, then the rest alphabetically."""
    archs = list(dict.fromkeys(archs))
    first = [arch for arch in preferred if arch in archs]
    return first + sorted(arch for arch in archs if arch not in first)
