"""Report: collect run metrics, build Tables 1/2 against the published numbers, draw the figures.

    from ame.report import build_report
    build_report("results/runs/mini", "results/tables", "results/figures", preset="mini")

Submodules: `collect` (metrics.json -> DataFrame), `tables` (aggregation, RSM effect, csv/md),
`figures` (t-SNE, F-score heatmaps, accuracy vs shots, training curves), `reference`
(published numbers shipped in `ame/reference/`). `figures` imports matplotlib and scikit-learn
only when used.
"""

from ame.report.build import build_report
from ame.report.collect import collect_runs
from ame.report.stats import rsm_effect
from ame.report.tables import table1, table2, write_tables

__all__ = ["build_report", "collect_runs", "rsm_effect", "table1", "table2", "write_tables"]
