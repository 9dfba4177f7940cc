"""Tables and figures from the results store: accuracy vs model dimension, learning curves, missing runs, and the
paper figures (ReBased Figure 1 and Table 1, Zoology Figure 2) with published numbers beside ours.

    from mqar.report import report, figure
    report("results/mqar.db", out_dir=Path("results/figures"), sweep="quick")
    figure("rebased-table1", "results/mqar.db", out_dir=Path("results/figures"), scale="reduced", run=True)

The reduction rules live in `aggregate.py`, the state-size formulas in `state_size.py`, the published numbers and
figure presets in `paper.py`.
"""

from mqar.report.aggregate import aggregate_points, missing_runs
from mqar.report.build import Report, build_report, figure, report

__all__ = ["Report", "aggregate_points", "build_report", "figure", "missing_runs", "report"]
