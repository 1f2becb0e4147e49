"""Which figures and curve files a report makes, decided from the grid's cells alone.

The report rule declares exactly these files as its outputs (from the run specifications, before
anything runs) and `build_report` draws exactly these (from the runs it reads), so deleting any
one regenerates it. A cell is (task, dataset, setting, method) of a trained run. Every figure is a
PNG and a PDF with one stem (`ame.report.figures.FORMATS`).

Figures: Fig. 5 (`accuracy_vs_shots`) once; Fig. 3 (`fscore_<dataset>`), Fig. 4 (`tsne_<dataset>`)
and the training curves (`training_curves_<dataset>`) for every base-to-new dataset where both
methods of an RSM pair ran at a common setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ame.report.captions import SUFFIX as CAPTION_SUFFIX
from ame.report.dvc_metrics import CURVE_METRICS
from ame.report.order import dataset_key, setting_key
from ame.spec.methods import METHODS, rsm_pairs

FORMATS = ("png", "pdf")
SHOTS_FIGURE = "accuracy_vs_shots"
PER_DATASET_FIGURES = ("tsne", "fscore", "training_curves")
# Fig. 3 and the training curves show one setting: the paper's headline few-shot setting (its
# tables' 16 shots) where the pair ran it, else the largest K-shot, else the largest setting.
HEADLINE_SETTING = "16shot"


def preferred_pairs() -> list[tuple[str, str]]:
    """RSM pairs, PKD's first (the paper's figures compare PromptKD with PKD + RSM)."""
    return sorted(rsm_pairs(), key=lambda pair: not METHODS[pair[1]].prompts)


def paired_datasets(cells: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """Base-to-new datasets where both methods of an RSM pair ran at a common setting."""
    have = {(d, s, m) for t, d, s, m in cells if t == "base2new"}
    out = {d for d, s, m in have for b, t in rsm_pairs() if m == t and (d, s, b) in have}
    return sorted(out, key=dataset_key)


def figure_datasets(cells) -> list[str]:
    """The datasets that get Figs. 3 and 4 and training curves: every paired dataset."""
    return paired_datasets(list(cells))


def restrict(requested, available: list[str], what: str) -> list[str]:
    """`available`, or only the `requested` datasets (each must be available; ValueError otherwise)."""
    if not requested:
        return list(available)
    requested = [requested] if isinstance(requested, str) else list(requested)
    absent = [d for d in requested if d not in available]
    if absent:
        raise ValueError(f"{what}: no paired baseline/+RSM base-to-new runs with embeddings.npz for "
                         f"{absent}; available: {available or 'none'}")
    return [d for d in available if d in requested]


def headline_setting(settings: Iterable[str]) -> str:
    """The setting Fig. 3 and the training curves show (see HEADLINE_SETTING)."""
    settings = list(settings)
    if HEADLINE_SETTING in settings:
        return HEADLINE_SETTING
    shots = [s for s in settings if re.fullmatch(r"\d+shot", s)]
    return max(shots or settings, key=setting_key)


def curve_stems(cells) -> list[str]:
    """Stems of the DVC curve files: per (task, dataset, setting), each metric a method logs."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for task, dataset, setting, method in cells:
        if METHODS[method].trains:
            groups.setdefault((task, dataset, setting), set()).add(method)
    out = []
    for (task, dataset, setting), methods in sorted(groups.items()):
        for metric in CURVE_METRICS:
            if metric != "rsm_entropy" or any(METHODS[m].rsm for m in methods):
                out.append(f"{task}_{dataset}_{setting}_{metric}")
    return out


def figure_stems(datasets: list[str]) -> list[str]:
    """Figure stems (file names without extension): Fig. 5, then per dataset Figs. 4, 3 and curves."""
    return [SHOTS_FIGURE] + [f"{kind}_{d}" for d in datasets for kind in PER_DATASET_FIGURES]


def figure_names(datasets: list[str]) -> list[str]:
    """Every figure file the report writes for `datasets`: each stem as PNG and PDF."""
    return [f"{stem}.{fmt}" for stem in figure_stems(datasets) for fmt in FORMATS]


# ------------------------------------------------------------------ the HTML report
# Sections of `snakemake --report`: (category, labels) per artefact kind. Captions are the
# `<stem>.caption.rst` files the report writes (`ame.report.captions`).
HTML_TABLES = {
    "summary.html": "Summary (RSM vs the paper's claims)",
    "table1.html": "Table 1 (base-to-new)",
    "table2.html": "Table 2 (cross-dataset)",
    "rsm_effect.html": "Table 3 (paired effect of RSM)",
    "teacher_check.html": "Teacher check",
}
_FIGURE_SECTIONS = {
    SHOTS_FIGURE: ("Fig. 5 (HM vs shots)", "Fig. 5"),
    "fscore": ("Fig. 3 (F-score heatmaps)", "Fig. 3"),
    "tsne": ("Fig. 4 (t-SNE)", "Fig. 4"),
    "training_curves": ("Training curves", "curves"),
}


def figure_caption_names(datasets: list[str]) -> list[str]:
    """The caption file of every figure stem (`<stem>.caption.rst`)."""
    return [f"{stem}{CAPTION_SUFFIX}" for stem in figure_stems(datasets)]


def html_report_figures(datasets: list[str]) -> list[tuple[str, str, str | None, dict]]:
    """(PNG file name, category, subcategory, labels) of every figure the HTML report shows: Fig. 5
    once, then per dataset Figs. 3 and 4 and the training curves (subcategory = the dataset)."""
    category, label = _FIGURE_SECTIONS[SHOTS_FIGURE]
    out = [(f"{SHOTS_FIGURE}.png", category, None, {"figure": label})]
    for d in datasets:
        for kind in PER_DATASET_FIGURES:
            category, label = _FIGURE_SECTIONS[kind]
            out.append((f"{kind}_{d}.png", category, d, {"figure": label, "dataset": d}))
    return out
