"""Reports and paper figures: the library calls behind `mqar report` and `mqar figure`.

`build_report` works on DataFrames (runs, optionally epochs and the planned grid) and writes files; `report` and
`figure` read the store (and, for `figure --run`, run what is missing through the sweep runner) and call it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from mqar.errors import UserError
from mqar.paths import check_writable_folder
from mqar.report.aggregate import (
    CELL_COLUMNS, RUN_COLUMNS, aggregate_points, best_runs, filter_runs, metric_column, missing_runs,
    per_lr_table, status_counts, unique_runs,
)
from mqar.report.diagnose import memorisation_note
from mqar.report.paper import FIGURES, KERNEL_LABELS, SCALES, FigurePreset, reference_numbers
from mqar.report.provenance import write_provenance
from mqar.report.state_size import STATE_SIZE_FORMULAS, state_size
from mqar.report.plots import X_AXES, plot_accuracy, plot_by_arch, plot_learning_curves, save_figure
from mqar.report.tables import missing_summary, missing_table, points_table, to_markdown

PANEL_BY = {"seq-len": "seq_len", "num-kv-pairs": "num_kv_pairs"}
UNSWEPT = "runs"  # the name used for runs stored without a sweep (e.g. single `mqar train` results)


def file_stem(name: str) -> str:
    """A report's name as the start of its files' names: `mqar sweep --name exp/one` is a valid sweep name, and
    the report's files went to a folder exp/ that did not exist (a traceback)."""
    return name.replace("/", "_").replace(os.sep, "_")


@dataclass
class Report:
    """What one report produced: the numbers, what is missing, and the files written."""

    name: str
    points: pd.DataFrame  # aggregate_points()
    table: pd.DataFrame  # points_table(): the plotted numbers (beside the paper's, where given)
    missing: pd.DataFrame  # missing_runs()
    total_runs: int
    per_lr: pd.DataFrame  # per_lr_table(): every lr of every cell
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return not self.missing.empty


def expected_frame(configs: Sequence) -> pd.DataFrame:
    """The planned grid (RunConfigs) as rows with run_id and the run columns, to find runs absent from the store."""
    rows = [
        {"run_id": config.id, "arch": config.arch, "d_model": config.d_model, "seq_len": config.task.seq_len,
         "num_kv_pairs": config.task.num_kv_pairs, "vocab_size": config.task.vocab_size, "lr": config.lr,
         "seed": config.seed}
        for config in configs
    ]
    return pd.DataFrame(rows, columns=["run_id"] + RUN_COLUMNS)


def build_report(
    runs: pd.DataFrame,
    *,
    name: str,
    out_dir: Path,
    metric: str = "test",
    x_axis: str = "d-model",
    panel_by: str = "seq-len",
    epochs: Optional[pd.DataFrame] = None,
    expected: Optional[pd.DataFrame] = None,
    title: Optional[str] = None,
    notes: Sequence[str] = (),
    reference: Optional[pd.DataFrame] = None,
    arch_order: Sequence[str] = (),
    by_arch: bool = False,
    curves: bool = True,
) -> Report:
    """Aggregate `runs`, draw the figure (and, with `curves`, the learning curves of `epochs`), write tables.
    Given `epochs`, the report also states what the curves show (mqar.report.diagnose: memorisation).

    Files, all named after `name` in `out_dir`: NAME.png/.pdf (accuracy), NAME-curves.png/.pdf, NAME.md (the
    table, the missing runs), NAME.csv (the table), NAME-missing.csv (when runs are missing). (`report` and
    `figure` add NAME-provenance.md.)
    """
    metric_column(metric)  # validates the name
    if x_axis not in X_AXES:
        raise UserError(f"unknown x axis {x_axis!r}; choose one of {', '.join(X_AXES)}")
    if panel_by not in PANEL_BY:
        raise UserError(f"unknown panel key {panel_by!r}; choose one of {', '.join(PANEL_BY)}")
    panel_column = PANEL_BY[panel_by]
    runs = unique_runs(runs)
    points = aggregate_points(runs, metric, expected)
    missing = missing_runs(runs, expected)
    total = len(runs) + (0 if expected is None else int((~expected["run_id"].isin(runs["run_id"])).sum()))
    if points.empty:
        counts = ", ".join(f"{count} {status}" for status, count in status_counts(runs).items()) or "no runs"
        failed = missing.loc[missing["status"] == "failed", "error"]
        if not failed.empty:  # running the sweep again skips failed runs: only --retry-failed reruns them
            raise UserError(
                f"no finished runs to report for {name} ({counts}; e.g. {failed.iloc[0] or 'no error recorded'}); "
                f"fix the cause, then rerun them with the sweep's `mqar sweep` command and --retry-failed"
            )
        raise UserError(
            f"no finished runs to report for {name} ({counts}); run the sweep first "
            f"(`mqar sweep` or `mqar figure NAME --run`)"
        )
    if x_axis == "state-size" and not any(state_size(arch, 64, 64) is not None for arch in points["arch"].unique()):
        raise UserError(f"no state-size formula for {', '.join(sorted(points['arch'].unique()))}; "
                        f"use --x d-model (formulas exist for {', '.join(STATE_SIZE_FORMULAS)})")
    notes = list(notes)
    summary = missing_summary(missing, total)
    if summary:
        notes.insert(0, f"PARTIAL: {summary}")
    diagnosis = memorisation_note(runs, epochs) if epochs is not None else None
    if diagnosis:
        notes.append(diagnosis)
    if reference is not None:
        # Published numbers only where our task matches theirs.
        reference = reference.merge(points[["seq_len", "num_kv_pairs", "vocab_size"]].drop_duplicates())
    title = title or f"{name}: MQAR accuracy vs " + ("model dimension" if x_axis == "d-model" else "recurrent state size")
    report = Report(name=name, points=points, table=points_table(points, reference), missing=missing,
                    total_runs=total, per_lr=per_lr_table(runs, points, metric), notes=notes)

    out_dir = Path(out_dir)
    check_writable_folder(out_dir, what=f"into the output folder {out_dir}", flag="--out")
    if by_arch and reference is not None:
        figure = plot_by_arch(points, title=title, reference=reference, metric=metric, notes=notes,
                              arch_order=arch_order, arch_labels=KERNEL_LABELS)
    else:
        figure = plot_accuracy(points, title=title, metric=metric, x_axis=x_axis, panel_by=panel_column,
                               notes=notes, arch_order=arch_order, reference=reference)
    report.files += save_figure(figure, out_dir, file_stem(name))
    if epochs is not None and curves:
        behind = best_runs(runs, points)
        curve_rows = epochs.merge(
            behind[["run_id", "arch", "d_model", "seed", "seq_len", "num_kv_pairs", "vocab_size"]], on="run_id"
        )
        if not curve_rows.empty:
            figure = plot_learning_curves(curve_rows, title=f"{name}: learning curves (best lr, every seed)",
                                          notes=notes, arch_order=arch_order, panel_by=panel_column)
            report.files += save_figure(figure, out_dir, f"{file_stem(name)}-curves")
    report.files += write_tables(report, out_dir, metric)
    return report


def write_tables(report: Report, out_dir: Path, metric: str) -> list[Path]:
    """NAME.md (numbers, every lr where a cell tried several, missing runs), NAME.csv (numbers),
    NAME-missing.csv (when any are missing)."""
    markdown = [f"# {report.name}\n", f"Metric: {metric} ({metric_column(metric)}); mean ± std over seeds at the "
                "lr with the best seed-mean validation accuracy; n_seeds finished of n_expected planned.\n"]
    if "paper_mean" in report.table:
        markdown.append("paper_mean ± paper_std: the published numbers; diff = mean - paper_mean.\n")
    markdown += [f"**{note}**\n" for note in report.notes]
    markdown.append(to_markdown(report.table))
    if report.per_lr.groupby(CELL_COLUMNS)["lr"].nunique().gt(1).any():
        # Only where some cell tried several lrs: a one-lr sweep's table would repeat the one above.
        markdown += ["\n## Every lr\n", f"{metric} per seed at each lr; chosen: the lr the point above kept.\n",
                     to_markdown(report.per_lr.assign(chosen=report.per_lr["chosen"].map({True: "yes", False: ""})))]
    if report.partial:
        markdown += ["\n## Missing runs\n", to_markdown(missing_table(report.missing))]
    stem = file_stem(report.name)
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.csv"]
    paths[0].write_text("\n".join(markdown))
    report.table.to_csv(paths[1], index=False)
    missing = out_dir / f"{stem}-missing.csv"
    if report.partial:
        paths.append(missing)
        missing_table(report.missing).to_csv(missing, index=False)
    else:  # an earlier draw's list, when the grid was partial, would name runs that have finished since
        missing.unlink(missing_ok=True)
    return paths


def _load_runs(store: str | os.PathLike) -> pd.DataFrame:
    from mqar.results import load  # the store layer; imported here so the report core needs only pandas

    return load(store)


def report(
    store: str | os.PathLike,
    *,
    out_dir: Path,
    sweep: Optional[str] = None,
    archs: Optional[Sequence[str]] = None,
    seq_lens: Optional[Sequence[int]] = None,
    num_kv_pairs: Optional[Sequence[int]] = None,
    d_models: Optional[Sequence[int]] = None,
    metric: str = "test",
    x_axis: str = "d-model",
    panel_by: str = "seq-len",
    curves: bool = False,
) -> list[Report]:
    """One report per sweep in the store (or only `sweep`), filtered by arch / task / width. Without `sweep`,
    sweeps with no finished run are left out (`unreported_sweeps` names them), unless no sweep has one."""
    from mqar.results import load_epochs

    runs = _load_runs(store)
    if runs.empty:
        raise UserError(f"the store {store} has no runs yet; run `mqar sweep` (or `mqar figure NAME --run`) first")
    runs = runs.assign(sweep=runs["sweep"].fillna(UNSWEPT))
    names = list(dict.fromkeys(runs["sweep"]))
    if sweep is not None:
        if sweep not in names:
            raise UserError(f"no sweep named {sweep!r} in {store}; sweeps there: {', '.join(names)}")
        runs = runs[runs["sweep"] == sweep]
    # Filtered once, the runs to report together: without --sweep the whole store, then each sweep that keeps some
    # run reports what it has (a value held by one sweep only is no error for the others).
    runs = filter_runs(runs, archs, seq_lens, num_kv_pairs, d_models)
    names = list(dict.fromkeys(runs["sweep"]))
    # Without --sweep, a sweep that has finished no run yet (just started, or every run failed) is left out rather
    # than failing the whole command: it stopped the reports of every other sweep in the store. Its error stays
    # for `--sweep NAME`, and for a store where no sweep has finished a run.
    finished = set(runs.loc[runs["status"] == "done", "sweep"])
    if sweep is None and finished:
        names = [name for name in names if name in finished]
    reports = []
    for name in names:
        selected = runs[runs["sweep"] == name]
        epochs = load_epochs(store, selected.loc[selected["status"] == "done", "run_id"])
        result = build_report(selected, name=name, out_dir=out_dir, metric=metric, x_axis=x_axis,
                              panel_by=panel_by, epochs=epochs, curves=curves)
        filters = "".join(f" --{flag} {','.join(map(str, values))}" for flag, values in (
            ("archs", archs), ("seq-lens", seq_lens), ("num-kv-pairs", num_kv_pairs), ("d-models", d_models)) if values)
        # Quoted: the command is to be pasted into a shell, and a folder name may hold a space.
        redraw = (f"mqar report --store {shlex.quote(str(store))} --sweep {shlex.quote(name)} "
                  f"--out {shlex.quote(str(out_dir))} --metric {metric} --x {x_axis} "
                  f"--panel-by {panel_by}{filters}{' --curves' if curves else ''}")
        result.files.append(write_provenance(
            Path(out_dir) / f"{file_stem(name)}-provenance.md", unique_runs(selected), name=name,
            planned=result.total_runs, notes=result.notes, commands=[redraw]))
        reports.append(result)
    return reports


def unreported_sweeps(store: str | os.PathLike, reported: Sequence[str]) -> dict[str, str]:
    """The store's sweeps without a finished run that a report of every sweep left out, each with its status
    counts, e.g. {'b': '16 pending'}."""
    runs = _load_runs(store)
    runs = runs.assign(sweep=runs["sweep"].fillna(UNSWEPT))
    return {
        name: ", ".join(f"{count} {status}" for status, count in status_counts(group).items())
        for name, group in runs.groupby("sweep", sort=False)
        if name not in reported and not (group["status"] == "done").any()
    }


def figure_preset(name: str) -> FigurePreset:
    try:
        return FIGURES[name]
    except KeyError:
        raise UserError(f"unknown figure {name!r}; choose one of {', '.join(FIGURES)}") from None


def protocol_note(configs: Sequence, scale: str) -> str:
    """What the grid is, read off the configs themselves, e.g. 'reduced protocol: 1 lr (0.003) × 2 seeds, 100000
    train examples, 64 epochs'."""
    lrs = sorted({config.lr for config in configs})
    seeds = sorted({config.seed for config in configs})
    train = sorted({config.recipe.num_train_examples for config in configs})
    epochs = sorted({config.recipe.epochs for config in configs})
    lr_text = f"{len(lrs)} lr{'s' if len(lrs) != 1 else ''} ({', '.join(f'{lr:g}' for lr in lrs)})"
    seed_text = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    text = (f"{lr_text} × {seed_text}, {'/'.join(map(str, train))} train examples, "
            f"{'/'.join(map(str, epochs))} epochs")
    return f"{scale} protocol: {text}"


def figure(
    name: str,
    store: str | os.PathLike,
    *,
    out_dir: Path,
    scale: str = "full",
    run: bool = False,
    metric: Optional[str] = None,
    curves: bool = False,
    run_options: Optional[dict] = None,
) -> Report:
    """Draw a paper figure from the runs of its sweep that are in the store; with `run`, first run the missing
    ones through the sweep runner (`run_options` go to `mqar.sweep.run_sweep`, e.g. devices, runs_per_device).
    A Ctrl-C that stops those runs raises KeyboardInterrupt (its message: the sweep's counts); nothing is drawn."""
    from mqar.sweep.spec import load_sweep_spec

    preset = figure_preset(name)
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    spec = load_sweep_spec(preset.sweep_name(scale))
    configs = spec.expand()
    if run:
        from mqar.sweep import run_sweep  # the runner (and torch) only when asked to train

        summary = run_sweep(spec, store=store, **(run_options or {}))
        if summary.interrupted:  # Ctrl-C: stop here, as mqar sweep does, not draw the runs finished so far
            raise KeyboardInterrupt(summary.counts)
    hint = f"run `mqar figure {name} --scale {scale} --run --store {store}` to train them"
    if not Path(store).is_file():
        raise UserError(f"no results store at {store}; {hint}")
    expected = expected_frame(configs)
    runs = _load_runs(store)
    runs = unique_runs(runs[runs["run_id"].isin(expected["run_id"])])
    if not (runs["status"] == "done").any():
        if (runs["status"] == "failed").any():  # --run skips failed runs: only --retry-failed reruns them
            hint = (f"{int((runs['status'] == 'failed').sum())} failed; fix the cause, then rerun them with "
                    f"`mqar sweep --preset {spec.name} --store {store} --retry-failed`")
        raise UserError(f"none of the {len(expected)} runs of {spec.name} has finished in {store}; {hint}")
    from mqar.results import load_epochs

    epochs = load_epochs(store, runs.loc[runs["status"] == "done", "run_id"])
    notes = [protocol_note(configs, scale)] if scale == "reduced" else []
    reference = reference_numbers(preset.reference)
    if reference is not None and scale == "reduced":
        notes.append("paper: full protocol (4 lrs × 5 seeds)")
    title = preset.title + (" (reduced)" if scale == "reduced" else "")
    result = build_report(runs, name=spec.name, out_dir=out_dir, metric=metric or preset.metric, epochs=epochs,
                          expected=expected, title=title, notes=notes, reference=reference,
                          arch_order=preset.arch_order, by_arch=preset.reference is not None, curves=curves)
    quoted_store, quoted_out = shlex.quote(str(store)), shlex.quote(str(out_dir))  # for a shell, as in report
    commands = [f"mqar figure {name} --scale {scale} --run --store {quoted_store}"
                "   # train what is missing (resumable)",
                f"mqar figure {name} --scale {scale} --store {quoted_store} --out {quoted_out}"
                f"{' --curves' if curves else ''}"
                f"{f' --metric {metric}' if metric else ''}   # redraw"]
    result.files.append(write_provenance(
        Path(out_dir) / f"{spec.name}-provenance.md", runs, name=spec.name, planned=len(expected),
        notes=[f"sweep preset: sweeps/{spec.name}.toml", *result.notes], commands=commands))
    return result
