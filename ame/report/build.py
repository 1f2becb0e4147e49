"""`build_report`: runs -> tables, figures and metrics_summary.json."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from ame.io import write_json
from ame.report.collect import collect_runs
from ame.report.dvc_metrics import write_dvc_metrics
from ame.report.plan import PREFERRED_HEATMAPS, PREFERRED_TSNE, choose, preferred_pairs
from ame.report.order import dataset_key, setting_key
from ame.report.stats import RSM_PAIRS
from ame.report.tables import metrics_summary, write_tables



def _embedding_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """base2new trained runs that have an embeddings.npz, with its path."""
    b2n = runs[(runs["task"] == "base2new") & (runs["method"] != "zeroshot")].copy()
    b2n["embeddings"] = [Path(d) / "embeddings.npz" for d in b2n["run_dir"]]
    return b2n[[p.is_file() for p in b2n["embeddings"]]]


def _pair_cells(emb: pd.DataFrame) -> dict:
    """{(dataset, baseline, treated): {setting: {method: run row}}} for the first seed (seed 1
    where present) that both methods of a pair have at a setting."""
    out: dict = {}
    for baseline, treated in RSM_PAIRS:
        a = emb[emb["method"] == baseline]
        b = emb[emb["method"] == treated]
        for (ds, setting), ga in a.groupby(["dataset", "setting"]):
            gb = b[(b["dataset"] == ds) & (b["setting"] == setting)]
            seeds = sorted(set(ga["seed"]) & set(gb["seed"]))
            if not seeds:
                continue
            seed = 1 if 1 in seeds else seeds[0]
            out.setdefault((ds, baseline, treated), {})[setting] = {
                baseline: ga[ga["seed"] == seed].iloc[0], treated: gb[gb["seed"] == seed].iloc[0]}
    return out


def _best_pair_per_dataset(cells: dict) -> dict:
    """dataset -> (baseline, treated, {setting: {method: row}}), preferring (pkd, pkd_rsm)."""
    out = {}
    for baseline, treated in preferred_pairs():
        for (ds, a, b), by_setting in cells.items():
            if (a, b) == (baseline, treated) and ds not in out:
                out[ds] = (a, b, by_setting)
    return out


def _largest_few_shot(settings) -> str:
    shots = [s for s in settings if re.fullmatch(r"\d+shot", s)]
    if shots:
        return max(shots, key=setting_key)
    return max(settings, key=setting_key)


def build_report(run_dirs, tables_dir: str | os.PathLike,
                 figures_dir: str | os.PathLike, preset: str, selection: str = "best",
                 tsne_dataset: str | None = None, heatmap_datasets=None,
                 metrics_dir: str | os.PathLike | None = None) -> dict:
    """Collect the runs in `run_dirs` (those the preset plans) and write every report artefact.

    Writes into `tables_dir`: table1.csv/.md, table2.csv/.md, rsm_effect.csv and
    metrics_summary.json (unless `metrics_dir` is given); into `figures_dir`: accuracy_vs_shots.png,
    tsne_<dataset>.png (pkd vs pkd_rsm — else simple vs simple_rsm — at seed 1 across settings;
    default dataset OxfordPets when present, else the first with embeddings),
    fscore_<dataset>.png for up to two datasets (default Food101 and EuroSAT when present) at the
    largest few-shot setting, and training_curves_<dataset>.png for the t-SNE dataset at that
    setting. Figures that lack embeddings are skipped with a warning and a note.

    With `metrics_dir`, the files behind `dvc metrics show` / `dvc plots show` go there
    (summary.json, runs.json, curves/; see `ame.report.dvc_metrics`) and the summary is that
    summary.json.

    Returns {"written": [all paths], "tables": [...], "figures": [...], "summary": path,
    "notes": [str]}.
    """
    from ame.report import figures

    runs = collect_runs(run_dirs)
    # Choose the figure datasets first, so a bad request fails before anything is written.
    by_ds = _best_pair_per_dataset(_pair_cells(_embedding_runs(runs)))
    available = sorted(by_ds, key=dataset_key)
    tsne_ds = choose(tsne_dataset, PREFERRED_TSNE, available, 1, "tsne_dataset")
    heat_ds = choose(heatmap_datasets, PREFERRED_HEATMAPS, available, 2, "heatmap_datasets")

    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    tabs = write_tables(runs, tables_dir, preset, selection)
    notes: list[str] = []
    figs: list[Path] = [figures.accuracy_vs_shots(tabs["table1"], figures_dir / "accuracy_vs_shots.png")]
    if not available:
        notes.append("no paired baseline/+RSM base-to-new runs with embeddings.npz: t-SNE, F-score "
                     "and training-curve figures skipped")
        warnings.warn(notes[-1], stacklevel=2)

    for ds in tsne_ds:
        a, b, by_setting = by_ds[ds]
        pairs = {s: {m: row["embeddings"] for m, row in cell.items()} for s, cell in by_setting.items()}
        figs.append(figures.tsne_figure(pairs, figures_dir / f"tsne_{ds}.png",
                                        title=f"{ds}: t-SNE of student features, {a} vs {b}"))
        setting = _largest_few_shot(by_setting)
        hist = {m: Path(row["run_dir"]) / "history.csv" for m, row in by_setting[setting].items()}
        if all(p.is_file() for p in hist.values()):
            figs.append(figures.training_curves(hist, figures_dir / f"training_curves_{ds}.png",
                                                title=f"{ds} {setting}"))
        else:
            notes.append(f"{ds} {setting}: history.csv missing; training curves skipped")
    for ds in heat_ds:
        a, b, by_setting = by_ds[ds]
        setting = _largest_few_shot(by_setting)
        cell = by_setting[setting]
        figs.append(figures.fscore_heatmaps({a: cell[a]["embeddings"], b: cell[b]["embeddings"]},
                                            figures_dir / f"fscore_{ds}.png",
                                            title=f"{ds} {setting}: one-vs-rest F-scores"))

    summary_data = metrics_summary(tabs["table1"], tabs["table2"])
    if metrics_dir is not None:
        metric_files = write_dvc_metrics(runs, summary_data, metrics_dir)
        summary = metric_files[0]
    else:
        summary = tables_dir / "metrics_summary.json"
        write_json(summary, summary_data)
        metric_files = [summary]
    written = [*tabs["paths"], *figs, *metric_files]
    return {"written": written, "tables": tabs["paths"], "figures": figs, "summary": summary,
            "notes": notes}

