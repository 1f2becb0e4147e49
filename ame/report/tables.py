"""Tables 1 (base-to-new) and 2 (cross-dataset), the paired RSM effect, and their files:
composed from `stats` (aggregation), `reference` (the papers' numbers), `order`, `panels` (the
papers' layout) and `render` (captions, Markdown, LaTeX)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ame.io import write_text
from ame.report import reference
from ame.report.order import sort_rows
from ame.report.panels import B2N_METRICS, XD_METRICS, tidy
from ame.report.render import (TABLE1_TITLE, TABLE2_TITLE, effect_latex, effect_markdown, html_page,
                               table1_latex, table1_markdown, table2_latex, table2_markdown, to_csv_text)
from ame.report.stats import aggregate, rsm_effect, select_scores

TABLE1_COLUMNS = [
    "dataset", "method", "setting", "selection", "base", "base_std", "new", "new_std", "hm",
    "hm_std", "n_seeds", "n_datasets", "paper_base", "paper_new", "paper_hm", "delta_hm",
    "promptkd_base", "promptkd_new", "promptkd_hm",
]


TABLE2_COLUMNS = [
    "target", "method", "setting", "selection", "accuracy", "accuracy_std", "n_seeds", "n_datasets",
    "paper_accuracy", "delta_accuracy", "promptkd_accuracy",
]



def _paper_comparable(datasets: set[str], task: str) -> bool:
    """The papers' Average is over all their datasets; compare ours only over the same set."""
    wanted = reference.PAPER_B2N_DATASETS if task == "base2new" else reference.PAPER_XD_TARGETS
    return {reference.canonical_dataset(d) for d in datasets} == set(wanted)



def _with_paper(agg: pd.DataFrame, task: str) -> pd.DataFrame:
    if agg.empty:
        return agg
    real = agg[agg["dataset"] != reference.AVERAGE]
    covered = {(m, st): set(g["dataset"]) for (m, st), g in real.groupby(["method", "setting"])}
    extra = []
    for _, r in agg.iterrows():
        cols = reference.paper_columns(task, r["dataset"], r["method"], r["setting"])
        if r["dataset"] == reference.AVERAGE and not _paper_comparable(
                covered.get((r["method"], r["setting"]), set()), task):
            cols = dict.fromkeys(cols, float("nan"))
        extra.append(cols)
    return pd.concat([agg.reset_index(drop=True), pd.DataFrame(extra)], axis=1)



def _finish(df: pd.DataFrame, columns: list[str], selection: str) -> pd.DataFrame:
    df = df.copy()
    df["selection"] = selection
    for c in columns:
        if c not in df:
            df[c] = pd.Series(dtype=str if c in ("dataset", "target", "method", "setting") else float)
    df = df[columns]
    for c in ("n_seeds", "n_datasets"):
        df[c] = df[c].astype("Int64")
    return df



def table1(runs: pd.DataFrame, selection: str = "best") -> pd.DataFrame:
    """Table 1 (base-to-new): one row per dataset × method × setting plus the Average rows, with
    mean ± std, n_seeds and the published columns (see TABLE1_COLUMNS). Unrounded."""
    agg = aggregate(select_scores(runs, selection), "base2new")
    df = _with_paper(agg, "base2new")
    if not df.empty:
        df["delta_hm"] = df["hm"] - df["paper_hm"]
    return sort_rows(_finish(df, TABLE1_COLUMNS, selection), "dataset")



def table2(runs: pd.DataFrame, selection: str = "best") -> pd.DataFrame:
    """Table 2 (cross-dataset): one row per target × method × setting plus the Average over
    targets, accuracy ± std, paper and PromptKD-paper values (see TABLE2_COLUMNS). Unrounded;
    zero rows when there are no xd runs."""
    agg = aggregate(select_scores(runs, selection), "xd")
    df = _with_paper(agg, "xd")
    if not df.empty:
        df["delta_accuracy"] = df["accuracy"] - df["paper_accuracy"]
        df = df.rename(columns={"dataset": "target"})
    return sort_rows(_finish(df, TABLE2_COLUMNS, selection), "target")



def metrics_summary(t1: pd.DataFrame, t2: pd.DataFrame) -> dict:
    """{"base2new": {dataset: {method: {setting: {base, new, hm}}}}, "xd": {target: {method:
    {setting: {accuracy}}}}} with values rounded to 2 decimals and None for NaN."""
    def val(x):
        return None if pd.isna(x) else round(float(x), 2)

    out: dict = {"base2new": {}, "xd": {}}
    for _, r in t1.iterrows():
        out["base2new"].setdefault(r["dataset"], {}).setdefault(r["method"], {})[r["setting"]] = {
            "base": val(r["base"]), "new": val(r["new"]), "hm": val(r["hm"])}
    for _, r in t2.iterrows():
        out["xd"].setdefault(r["target"], {}).setdefault(r["method"], {})[r["setting"]] = {
            "accuracy": val(r["accuracy"])}
    return out



def with_paper_delta(effect: pd.DataFrame) -> pd.DataFrame:
    """`effect` plus paper_delta: the AME paper's PKD + RSM − PromptKD for the row's cell (NaN for
    other pairs and cells the paper lacks)."""
    effect = effect.copy()
    effect["paper_delta"] = [
        reference.paper_rsm_delta(t, d, s) if (b, m) == ("pkd", "pkd_rsm") else float("nan")
        for t, b, m, d, s in zip(effect["task"], effect["baseline"], effect["method"],
                                 effect["dataset"], effect["setting"])]
    return effect


def write_tables(runs: pd.DataFrame, tables_dir: str | os.PathLike, preset: str,
                 selection: str = "best") -> dict:
    """Write Table 1, Table 2 and the paired RSM effect into `tables_dir`, each as .csv (tidy: one
    row per cell, see `panels.TIDY_COLUMNS`), .md, .tex (standalone booktabs document) and .html
    (the Markdown as a page, for the HTML report).

    Returns {"table1": DataFrame, "table2": DataFrame (wide, unrounded), "effect": DataFrame,
    "paths": [Path, ...]}.
    """
    out = Path(tables_dir)
    scores = select_scores(runs, selection)
    t1, t2 = table1(runs, selection), table2(runs, selection)
    e1 = rsm_effect(scores, "base2new", selection)
    e2 = rsm_effect(scores, "xd", selection)
    effect = with_paper_delta(pd.concat([e1, e2], ignore_index=True) if len(e2) else e1)
    files = {
        "table1.csv": to_csv_text(tidy(t1, "dataset", B2N_METRICS)),
        "table1.md": table1_markdown(t1, runs, preset, selection),
        "table1.tex": table1_latex(t1, runs, preset, selection),
        "table2.csv": to_csv_text(tidy(t2, "target", XD_METRICS)),
        "table2.md": table2_markdown(t2, runs, preset, selection),
        "table2.tex": table2_latex(t2, runs, preset, selection),
        "rsm_effect.csv": to_csv_text(effect),
        "rsm_effect.md": effect_markdown(effect, runs, preset, selection),
        "rsm_effect.tex": effect_latex(effect, runs, preset, selection),
    }
    for stem, title in (("table1", TABLE1_TITLE), ("table2", TABLE2_TITLE),
                        ("rsm_effect", "The paired effect of RSM")):
        files[f"{stem}.html"] = html_page(title, files[f"{stem}.md"])
    paths = []
    for name, text in files.items():
        write_text(out / name, text)
        paths.append(out / name)
    return {"table1": t1, "table2": t2, "effect": effect, "paths": paths}
