"""`build_report`: runs -> tables, figures and metrics_summary.json."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from ame.io import write_json, write_text
from ame.report.captions import write_caption
from ame.report.headline import headline_markdown
from ame.report.render import effect_caption, html_page, table1_caption, table2_caption
from ame.report.collect import collect_runs
from ame.report.dvc_metrics import write_dvc_metrics
from ame.report.plan import SHOTS_FIGURE, headline_setting, preferred_pairs, restrict
from ame.report.order import dataset_key, setting_key
from ame.report.stats import RSM_PAIRS
from ame.report.tables import metrics_summary, write_tables
from ame.spec.methods import method_order



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


def _add(captions: dict, paths: list[Path], caption: str) -> None:
    for path in paths:
        captions[str(path)] = caption


def _write_figures(table1: pd.DataFrame, by_ds: dict, tsne_ds: list[str], heat_ds: list[str],
                   figures_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Draw Fig. 5, and per chosen dataset Figs. 4 and 3 and the training curves; returns
    ({str(path): caption} for every file written, in plan order, notes)."""
    from ame.report import figures
    from ame.report.figures import TSNE_MAX_POINTS, TSNE_PCA_DIMS, TSNE_SEED, method_label, setting_label

    captions: dict[str, str] = {}
    notes: list[str] = []
    shown = table1[table1["method"].isin(figures.SHOTS_METHODS)]["method"].unique()
    _add(captions, figures.accuracy_vs_shots(table1, figures_dir / SHOTS_FIGURE),
         "Fig. 5: base-to-new HM (mean ± std over seeds) against shots per class for every dataset and "
         f"their average, one line per method ({', '.join(method_label(m) for m in sorted(shown, key=method_order))}; "
         "shifted slightly sideways so that equal values stay visible), the student's zero-shot HM "
         "as a dotted line.")
    if not by_ds:
        notes.append("no paired baseline/+RSM base-to-new runs with embeddings.npz: t-SNE, F-score "
                     "and training-curve figures skipped")
        warnings.warn(notes[-1], stacklevel=3)
    for ds in sorted(set(tsne_ds) | set(heat_ds), key=dataset_key):
        a, b, by_setting = by_ds[ds]
        la, lb = method_label(a), method_label(b)
        setting = headline_setting(by_setting)
        cell = by_setting[setting]
        seed = int(cell[a]["seed"])
        if ds in tsne_ds:
            settings = sorted(by_setting, key=setting_key)
            seeds = sorted({int(r["seed"]) for c in by_setting.values() for r in c.values()})
            pairs = {s: {m: row["embeddings"] for m, row in c.items()} for s, c in by_setting.items()}
            _add(captions, figures.tsne_figure(
                pairs, figures_dir / f"tsne_{ds}",
                title=f"Fig. 4 — {ds}: t-SNE of the student's test-image features, {la} vs {lb}"),
                f"Fig. 4: t-SNE of the student's test-image features on {ds}, {la} (top row) vs {lb} "
                f"(bottom row), one column per setting ({', '.join(map(setting_label, settings))}); "
                f"each panel reduces the features to {TSNE_PCA_DIMS} principal components, then embeds a "
                f"class-stratified sample of at most {TSNE_MAX_POINTS} images with t-SNE, seed {TSNE_SEED}; "
                f"runs of seed {', '.join(map(str, seeds))}.")
        if ds in heat_ds:
            _add(captions, figures.fscore_heatmaps(
                {a: cell[a]["embeddings"], b: cell[b]["embeddings"]}, figures_dir / f"fscore_{ds}",
                title=f"Fig. 3 — {ds}, {setting_label(setting)}: class × feature F-scores, (A) {la} vs (B) {lb}"),
                f"Fig. 3: one-vs-rest F-score of every feature dimension (columns, ordered by (A)'s mean) "
                f"for every class (rows) of {ds}'s test images, (A) {la} vs (B) {lb} at "
                f"{setting_label(setting)}, seed {seed}; brighter is more discriminative.")
        if ds in tsne_ds:
            hist = {m: Path(row["run_dir"]) / "history.csv" for m, row in cell.items()}
            if all(p.is_file() for p in hist.values()):
                _add(captions, figures.training_curves(
                    hist, figures_dir / f"training_curves_{ds}",
                    title=f"{ds}, {setting_label(setting)}: training curves, {la} vs {lb}, seed {seed}"),
                    f"Per-epoch KD loss, RSM entropy H(M) and base accuracy of {la} and {lb} on {ds} at "
                    f"{setting_label(setting)}, seed {seed}.")
            else:
                notes.append(f"{ds} {setting}: history.csv missing; training curves skipped")
    return captions, notes


def build_report(run_dirs, tables_dir: str | os.PathLike,
                 figures_dir: str | os.PathLike, preset: str, selection: str = "best",
                 tsne_dataset: str | None = None, heatmap_datasets=None,
                 metrics_dir: str | os.PathLike | None = None,
                 readme: str | os.PathLike | None = None) -> dict:
    """Collect the runs in `run_dirs` (those the preset plans) and write every report artefact.

    Writes into `tables_dir`: table1.csv/.md, table2.csv/.md, rsm_effect.csv and
    metrics_summary.json (unless `metrics_dir` is given). Into `figures_dir`, each figure as a PNG
    and a PDF with one stem (the files `ame.report.plan.figure_names` declares):
    accuracy_vs_shots (Fig. 5: HM vs shots, every dataset and the Average) and, for every
    base-to-new dataset with a baseline/+RSM pair of runs with embeddings (pkd vs pkd_rsm, else
    simple vs simple_rsm; seed 1 where both have it): tsne_<dataset> (Fig. 4: one column per
    setting), fscore_<dataset> (Fig. 3) and training_curves_<dataset>, both at 16 shots, else the
    largest K-shot setting (`ame.report.plan.headline_setting`). `tsne_dataset` (one name or a
    list; it also selects the training curves) and `heatmap_datasets` restrict those figures to the
    datasets named, each of which must have such a pair (ValueError before anything is written).
    Without any pair only Fig. 5 is drawn, with a warning and a note.

    The headline (`ame.report.headline`) goes to `readme` (default: README.md beside `tables_dir`,
    i.e. results/<preset>/README.md) and, as a page for the HTML report, to tables/summary.html.
    Every artefact the HTML report shows (the .html tables, the summary, each figure stem) gets its
    caption file (`ame.report.captions`): what it shows, from which runs, with which settings.

    With `metrics_dir`, the files behind `dvc metrics show` / `dvc plots show` go there
    (summary.json, runs.json, curves/; see `ame.report.dvc_metrics`) and the summary is that
    summary.json.

    Returns {"written": [all paths], "tables": [...], "figures": [...], "captions": {str(figure
    path): one-sentence caption, the same for a figure's PNG and PDF}, "summary": path, "notes": [str]}.
    """
    runs = collect_runs(run_dirs)
    # Choose the figure datasets first, so a bad request fails before anything is written.
    by_ds = _best_pair_per_dataset(_pair_cells(_embedding_runs(runs)))
    available = sorted(by_ds, key=dataset_key)
    tsne_ds = restrict(tsne_dataset, available, "tsne_dataset")
    heat_ds = restrict(heatmap_datasets, available, "heatmap_datasets")

    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    tabs = write_tables(runs, tables_dir, preset, selection)
    captions, notes = _write_figures(tabs["table1"], by_ds, tsne_ds, heat_ds, figures_dir)
    figs = [Path(p) for p in captions]
    readme = Path(readme) if readme is not None else tables_dir.parent / "README.md"
    headline = headline_markdown(tabs["effect"], runs, preset, selection)
    write_text(readme, headline)
    write_text(tables_dir / "summary.html", html_page(f"Results of preset {preset}", headline))
    table_captions = {
        "summary.html": "The headline: the paired effect of RSM (PKD + RSM − PromptKD) beside the AME "
                        "paper's three claims, in plain words, with the seeds and the bootstrap CI; "
                        f"the same text as the preset's README.md ({readme.name} beside tables/). "
                        f"Preset `{preset}`; selection {selection}; from the paired runs of "
                        "tables/rsm_effect.csv.",
        "table1.html": "AME Table 1 in the paper's layout: the Average panel, then one panel per "
                       "dataset; each value beside the AME paper's and the difference. "
                       + table1_caption(tabs["table1"], runs, preset, selection),
        "table2.html": "AME Table 2 in the same layout, one panel per target. "
                       + table2_caption(tabs["table2"], runs, preset, selection),
        "rsm_effect.html": "The paired effect of RSM per dataset × setting and on average. "
                           + effect_caption(tabs["effect"], runs, preset, selection),
    }
    caption_files = [write_caption(tables_dir / name, text) for name, text in table_captions.items()]
    caption_files += [write_caption(path, text) for path, text in captions.items() if path.endswith(".png")]

    summary_data = metrics_summary(tabs["table1"], tabs["table2"])
    if metrics_dir is not None:
        metric_files = write_dvc_metrics(runs, summary_data, metrics_dir)
        summary = metric_files[0]
    else:
        summary = tables_dir / "metrics_summary.json"
        write_json(summary, summary_data)
        metric_files = [summary]
    written = [*tabs["paths"], readme, tables_dir / "summary.html", *figs, *caption_files, *metric_files]
    return {"written": written, "tables": tabs["paths"], "figures": figs, "captions": captions,
            "summary": summary, "notes": notes}

