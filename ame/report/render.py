"""Rendering tables for people: CSV text rounded for reading, captions that state the runs'
settings and where they differ from the paper's, and the Markdown / LaTeX documents of Tables 1
and 2 (laid out by `panels`) and of the paired RSM effect."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from markdown_it import MarkdownIt

from ame.report import reference
from ame.report.order import setting_key
from ame.report.panels import (B2N_METRICS, XD_METRICS, latex_document, latex_simple_document,
                               markdown_panels, method_label, setting_label, tidy)
from ame.report.stats import BOOT_SEED, N_BOOT, RSM_PAIRS
from ame.spec.methods import ZEROSHOT

_SELECTION_TEXT = {
    "best": "best — each run's selected checkpoint (the epoch with the best base accuracy, as the "
            "paper)",
    "last": "last — the last training epoch",
}


# The paper's settings a caption compares against (AME §4; PromptKD's reference scripts).
PAPER_OMEGA = 50.0


PAPER_OPTIM = {"optimizer": "sgd", "lr": 0.005, "batch_size": 8}


PAPER_KD_WEIGHT = {"FGVCAircraft": 200.0, "Flowers102": 200.0, "DTD": 200.0}  # else 1000; xd 1000



def _rounded(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == "float64":
            df[c] = df[c].round(2)
    return df



def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text with floats rounded to 2 decimals (NaN as an empty cell)."""
    return _rounded(df).to_csv(index=False, float_format="%.2f", lineterminator="\n")



def fmt(x, signed: bool = False) -> str:
    """A number with 2 decimals ('+' sign when `signed`), '—' when missing."""
    if x is None or pd.isna(x):
        return "—"
    return f"{x:+.2f}" if signed else f"{x:.2f}"



def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)



def _seeds_text(runs: pd.DataFrame, task: str) -> str:
    trained = runs[(runs["task"] == task) & (runs["method"] != ZEROSHOT)]  # zero-shot: no seeds
    seeds = sorted(int(s) for s in trained["seed"].unique())
    return ", ".join(map(str, seeds)) if seeds else "none"



def _paper_epochs(dataset: str, setting: str) -> int:
    return 2 if (dataset, setting) == ("ImageNet", "full") else 20



def _values(series) -> str:
    vals = sorted({v for v in series if v is not None and not (isinstance(v, float) and np.isnan(v))}, key=str)
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals)



def settings_caption(runs: pd.DataFrame, task: str, selection: str) -> str:
    """The settings the task's trained runs used, read from their params.json, and those that
    differ from the paper's (ω, φ, selection, shots, KD weight, epochs, optimiser)."""
    trained = runs[(runs["task"] == task) & (runs["method"] != ZEROSHOT)]
    if trained.empty:
        return ""
    rsm = trained[trained["omega"].notna()]
    shots = sorted(set(trained["setting"]), key=setting_key)
    used = [f"shots {', '.join(shots)}", f"KD weight {_values(trained['kd_weight'])}",
            f"epochs {_values(trained['epochs'])}", f"{_values(trained['optimizer'])} lr {_values(trained['lr'])}",
            f"batch {_values(trained['batch_size'])}"]
    if len(rsm):
        used[:0] = [f"ω = {_values(rsm['omega'])}",
                    "φ " + _values(rsm["rsm_trainable"].map({True: "trained", False: "frozen"}))]
    differ = []
    if len(rsm) and set(rsm["omega"]) != {PAPER_OMEGA}:
        differ.append(f"ω {_values(rsm['omega'])} (paper {PAPER_OMEGA:g})")
    if len(rsm) and not rsm["rsm_trainable"].all():
        differ.append("φ frozen (paper: trained)")
    if selection != "best":
        differ.append(f"selection {selection} (paper: best base-test epoch)")
    paper_shots = {"16shot", "full"}
    if set(shots) - paper_shots:
        differ.append(f"shots {', '.join(s for s in shots if s not in paper_shots)} (the paper's tables: 16-shot "
                      "and full)")
    for key, paper in PAPER_OPTIM.items():
        if set(trained[key]) != {paper}:
            differ.append(f"{key} {_values(trained[key])} (paper {paper})")
    wrong_kd = trained[[w != (1000.0 if task == "xd" else PAPER_KD_WEIGHT.get(d, 1000.0))
                        for d, w in zip(trained["dataset"], trained["kd_weight"])]]
    if len(wrong_kd):
        differ.append(f"KD weight {_values(wrong_kd['kd_weight'])} on {', '.join(sorted(set(wrong_kd['dataset'])))} "
                      "(the reference: 200 on FGVCAircraft, Flowers102, DTD, else 1000)")
    wrong_ep = trained[[e != _paper_epochs(d, st) for d, st, e in
                        zip(trained["dataset"], trained["setting"], trained["epochs"])]]
    if len(wrong_ep):
        differ.append(f"epochs {_values(wrong_ep['epochs'])} (paper 20; full-set ImageNet 2)")
    text = "Settings (from each run's params.json): " + "; ".join(used) + "."
    return text + (" Differs from the paper: " + "; ".join(differ) + "." if differ else
                   " All as in the paper.")



def _unpaired_note(runs: pd.DataFrame, task: str) -> str:
    """Which RSM methods ran without their baseline (so have no paired effect)."""
    present = set(runs.loc[runs["task"] == task, "method"])
    missing = [(b, t) for b, t in RSM_PAIRS if t in present and b not in present]
    if not missing:
        return ""
    return ("Not paired (the preset runs them without their baseline): "
            + ", ".join(f"{t} (baseline {b})" for b, t in missing) + ".\n")



def effect_rows(effect: pd.DataFrame, missing: str = "—") -> list[list[str]]:
    """Text cells of the RSM-effect table: pair, dataset, setting, n, mean Δ, 95 % CI, paper Δ."""
    return [[f"{method_label(r['baseline'])} → {method_label(r['method'])}", r["dataset"],
             setting_label(r["setting"]), str(r["n"]), fmt(r["mean_delta"], signed=True),
             f"[{fmt(r['ci_low'], True)}, {fmt(r['ci_high'], True)}]",
             fmt(r["paper_delta"], signed=True).replace("—", missing)]
            for _, r in effect.iterrows()]


EFFECT_HEADER = ["Pair", "Dataset", "Setting", "n", "mean Δ", "95 % CI", "AME paper Δ"]


def effect_caption(effect: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """What the effect table holds: paired Δ per (dataset, setting) over seeds, its bootstrap,
    which score (HM base-to-new, accuracy cross-dataset), and the unpaired methods."""
    unpaired = " ".join(filter(None, (_unpaired_note(runs, t).strip() for t in ("base2new", "xd"))))
    return (f"Preset `{preset}`; selection: {_SELECTION_TEXT[selection]}. Δ = score(+RSM) − "
            f"score(baseline) per (dataset, setting, seed) run pair, the score being HM for "
            f"base-to-new and accuracy for cross-dataset (xd); the same seed gives both methods the "
            f"same crops. Mean Δ with a 95 % percentile-bootstrap CI ({N_BOOT} resamples, RNG seed "
            f"{BOOT_SEED}) over seeds; the Average pools every (dataset, seed) pair and resamples "
            f"datasets, then seeds within each. n = number of pairs. With few seeds (3 give only 10 "
            f"distinct resample means) the interval is narrow by construction: read it as "
            f"descriptive, not as a significance test. AME paper Δ = its PKD + RSM row minus its "
            f"PromptKD row (PromptKD → PKD + RSM pairs only). {unpaired}").strip()


def effect_markdown(effect: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """rsm_effect.md: one section per task (base-to-new HM, cross-dataset accuracy)."""
    parts = ["# The paired effect of RSM", "", effect_caption(effect, runs, preset, selection), ""]
    if effect.empty:
        return "\n".join(parts + ["No paired runs (a method together with its +RSM variant) were found.", ""])
    for task, title in TASK_TITLES.items():
        sub = effect[effect["task"] == task]
        if len(sub):
            parts += [f"## {title} ({'HM' if task == 'base2new' else 'accuracy'})", "",
                      md_table(EFFECT_HEADER, effect_rows(sub)), ""]
    return "\n".join(parts)


def effect_latex(effect: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """rsm_effect.tex: the effect table as a standalone booktabs document (a Task column first)."""
    rows = [[TASK_TITLES[t], *r] for t, r in zip(effect["task"], effect_rows(effect, "--"))]
    return latex_simple_document("The paired effect of RSM", effect_caption(effect, runs, preset, selection),
                                 ["Task", *EFFECT_HEADER], rows)


TASK_TITLES = {"base2new": "Base-to-new", "xd": "Cross-dataset"}


def _average_note(table: pd.DataFrame, col: str, what: str, n_paper: int) -> str:
    avg = table[table[col] == reference.AVERAGE]
    if avg.empty:
        return ""
    n = int(avg["n_datasets"].max())
    return (f"Average = mean over the {what} present (up to {n}) of the per-{what[:-1]} means"
            f"{', HM of those' if what == 'datasets' else ''}; its ± is the std over seeds of the "
            f"per-seed averages (seeds present for every {what[:-1]}). The paper's Average is "
            f"shown only when all its {n_paper} {what} are present.")


def table1_caption(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    note = _average_note(table, "dataset", "datasets", len(reference.PAPER_B2N_DATASETS))
    return (f"Preset `{preset}`; selection: {_SELECTION_TEXT[selection]}; seeds "
            f"{_seeds_text(runs, 'base2new')}. {settings_caption(runs, 'base2new', selection)} Cells "
            f"are mean ± population std (ddof=0) over seeds; HM is the harmonic mean of the mean "
            f"Base and mean New (its ± is the std of the per-seed HMs). AME paper = AME Table 1 "
            f"(PromptKD → its PromptKD rows, PKD + RSM → PKD + RSM, CLIP → CLIP); Δ = ours − AME "
            f"paper; PromptKD paper = PromptKD's own published full-set student (PromptKD full "
            f"rows only). {note} The paired effect of RSM is in rsm_effect.md.").replace("  ", " ")


def table2_caption(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    note = _average_note(table, "target", "targets", len(reference.PAPER_XD_TARGETS))
    return (f"Preset `{preset}`; selection: {_SELECTION_TEXT[selection]}; seeds "
            f"{_seeds_text(runs, 'xd')}. {settings_caption(runs, 'xd', selection)} Cells are "
            f"accuracy mean ± population std (ddof=0) over seeds. AME paper = AME Table 2 (its CLIP "
            f"row is internally inconsistent as published); Δ = ours − AME paper; PromptKD paper = "
            f"its own student (PromptKD full rows only). {note} The paired effect of RSM is in "
            f"rsm_effect.md.").replace("  ", " ")


TABLE1_TITLE = "Table 1 — base-to-new generalisation"
TABLE2_TITLE = "Table 2 — cross-dataset transfer"


def table1_markdown(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """Table 1 in the paper's layout (Average panel, then one per dataset) under its caption."""
    parts = [f"# {TABLE1_TITLE}", "", table1_caption(table, runs, preset, selection), ""]
    if table.empty:
        return "\n".join(parts + ["No base-to-new runs were found.", ""])
    cells = tidy(table, "dataset", B2N_METRICS)
    return "\n".join(parts) + "\n" + markdown_panels(cells, "dataset", B2N_METRICS, "datasets")


def table2_markdown(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    """Table 2 in the same layout (Average panel, then one per target), or a note when empty."""
    parts = [f"# {TABLE2_TITLE}", "", table2_caption(table, runs, preset, selection), ""]
    if table.empty:
        return "\n".join(parts + ["No cross-dataset (xd) runs were found: the pipeline ran without the "
                                   "cross-dataset task, so this table has no rows.", ""])
    cells = tidy(table, "target", XD_METRICS)
    return "\n".join(parts) + "\n" + markdown_panels(cells, "target", XD_METRICS, "targets")


def table1_latex(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    cells = tidy(table, "dataset", B2N_METRICS)
    return latex_document(cells, "dataset", B2N_METRICS, "datasets", TABLE1_TITLE,
                          table1_caption(table, runs, preset, selection)
                          + ("" if len(cells) else " No base-to-new runs were found."))


def table2_latex(table: pd.DataFrame, runs: pd.DataFrame, preset: str, selection: str) -> str:
    cells = tidy(table, "target", XD_METRICS)
    return latex_document(cells, "target", XD_METRICS, "targets", TABLE2_TITLE,
                          table2_caption(table, runs, preset, selection)
                          + ("" if len(cells) else " No cross-dataset (xd) runs were found."))


_PAGE_CSS = ("body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
             "th,td{padding:0.25em 0.6em;border-bottom:1px solid #ccc;text-align:right;white-space:nowrap}"
             "th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}"
             "thead th{border-bottom:2px solid #444}h3{margin-bottom:0.2em}")


def html_page(title: str, markdown_text: str) -> str:
    """A self-contained HTML page of a Markdown document (tables included), for the HTML report."""
    body = MarkdownIt("commonmark").enable("table").render(markdown_text)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_PAGE_CSS}</style></head><body>\n{body}</body></html>\n")
