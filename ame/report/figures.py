"""The paper's figures: t-SNE (Fig. 4), class–feature F-score heatmaps (Fig. 3), accuracy vs
shots (Fig. 5), plus per-epoch training curves.

Rendering uses the Agg canvas directly (no pyplot, so no global backend state); PNGs are written
atomically at 120 dpi without a version stamp, so identical inputs give identical bytes.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ame import contracts
from ame.io import atomic_path
from ame.report.reference import AVERAGE
from ame.report.order import dataset_key, setting_key
from ame.spec.methods import DISTILL_METHODS, METHODS, method_order

DPI = 120
MAX_TSNE_POINTS = 600
SHOTS_METHODS = DISTILL_METHODS  # every trained method present (Fig. 5: PKD, Simple + RSM, PKD + RSM)


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return Path(out_png)


def load_embeddings(src) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features N×d float, labels N int, classnames) from an embeddings.npz path or a mapping
    with the same keys; ValueError naming the source when shapes disagree."""
    where = str(src) if not isinstance(src, Mapping) else "embeddings"
    if isinstance(src, Mapping):
        data = src
    else:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: embeddings file not found; rerun the distill step")
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    missing = set(contracts.EMBEDDING_KEYS) - set(data)
    if missing:
        raise ValueError(f"{where}: missing key(s) {sorted(missing)}")
    features = np.asarray(data["features"], dtype=np.float64)
    labels = np.asarray(data["labels"]).astype(np.int64)
    classnames = [str(c) for c in np.asarray(data["classnames"]).tolist()]
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"{where}: features {features.shape} and labels {labels.shape} disagree")
    if labels.size and (labels.min() < 0 or labels.max() >= len(classnames)):
        raise ValueError(f"{where}: labels outside 0..{len(classnames) - 1}")
    return features, labels, classnames


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `max_points` of `n` items, the same for the same (n, seed)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def class_colors(n: int) -> np.ndarray:
    """n distinct RGBA colours (tab10 / tab20 when they suffice, else evenly spaced on turbo)."""
    if n <= 10:
        return colormaps["tab10"](np.arange(n))
    if n <= 20:
        return colormaps["tab20"](np.arange(n))
    return colormaps["turbo"](np.linspace(0.05, 0.95, n))


def _tsne(features: np.ndarray, random_state: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = features.shape[0]
    if n < 3:
        return np.zeros((n, 2))
    perplexity = min(30.0, max(1.0, (n - 1) / 3))
    return TSNE(n_components=2, init="pca", random_state=random_state, perplexity=perplexity
                ).fit_transform(features)


def _class_legend(fig: Figure, classnames: list[str], colors: np.ndarray) -> None:
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[i], markersize=5)
               for i in range(len(classnames))]
    fig.legend(handles, classnames, loc="outside right center", fontsize=7,
               ncols=max(1, math.ceil(len(classnames) / 30)), frameon=False, title="class")


def _sorted_settings(settings) -> list[str]:
    return sorted(settings, key=setting_key)


def tsne_figure(pairs: Mapping[str, Mapping[str, object]], out_png: str | os.PathLike,
                title: str | None = None, max_points: int = MAX_TSNE_POINTS,
                random_state: int = 0) -> Path:
    """t-SNE of student embeddings with vs without RSM (the paper's Figure 4).

    `pairs` maps setting -> {method: embeddings.npz path or mapping}; the grid has one column per
    setting (4shot, 16shot, …, full) and one row per method (e.g. pkd, pkd_rsm). Each panel is
    its own t-SNE (init="pca", fixed random_state) of at most `max_points` points chosen
    deterministically, coloured by class, with one class legend.
    """
    settings = _sorted_settings(pairs)
    methods = sorted({m for s in settings for m in pairs[s]}, key=method_order)
    if not settings or not methods:
        raise ValueError("tsne_figure: no embeddings given")
    fig = Figure(figsize=(3.2 * len(settings) + 1.8, 3.0 * len(methods)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(methods), len(settings), squeeze=False))
    classnames: list[str] = []
    for j, setting in enumerate(settings):
        for i, method in enumerate(methods):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(method)
            if i == 0:
                ax.set_title(setting)
            src = pairs[setting].get(method)
            if src is None:
                ax.text(0.5, 0.5, "no run", ha="center", va="center", transform=ax.transAxes)
                continue
            features, labels, names = load_embeddings(src)
            classnames = classnames or names
            idx = subsample(len(labels), max_points)
            xy = _tsne(features[idx], random_state)
            colors = class_colors(len(names))
            ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels[idx]], s=6, linewidths=0)
    _class_legend(fig, classnames, class_colors(len(classnames)))
    if title:
        fig.suptitle(title)
    return _save(fig, out_png)


def fscores(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """C×d one-vs-rest ANOVA F-scores: row c = f_classif(features, labels == c); NaN (constant
    feature, or a class with no / all samples) becomes 0."""
    from sklearn.feature_selection import f_classif

    out = np.zeros((n_classes, features.shape[1]))
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        for c in range(n_classes):
            target = labels == c
            if target.all() or not target.any():
                continue
            f, _ = f_classif(features, target)
            out[c] = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def fscore_heatmaps(pairs: Mapping[str, object], out_png: str | os.PathLike,
                    title: str | None = None) -> Path:
    """Class × feature-dimension F-score heatmaps, baseline (A) vs +RSM (B) — the paper's Figure 3.

    `pairs` maps a label (e.g. "pkd", "pkd_rsm"; the first is the baseline) to embeddings. Columns
    of both panels are ordered by the baseline's mean F-score over classes (descending), so a
    column is the same dimension in both; one colour scale is shared.
    """
    labels_ = list(pairs)
    if len(labels_) < 2:
        raise ValueError("fscore_heatmaps: need a baseline and an +RSM embedding")
    mats, classnames = [], []
    for key in labels_:
        features, labels, names = load_embeddings(pairs[key])
        classnames = classnames or names
        mats.append(fscores(features, labels, len(names)))
    order = np.argsort(-mats[0].mean(axis=0), kind="stable")
    mats = [m[:, order] for m in mats]
    vmax = max(float(m.max()) for m in mats) or 1.0
    fig = Figure(figsize=(5.0 * len(mats) + 1.0, max(3.0, 0.16 * len(classnames) + 1.5)),
                 layout="constrained")
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    image = None
    for k, (ax, key, m) in enumerate(zip(axes, labels_, mats)):
        image = ax.imshow(m, aspect="auto", interpolation="nearest", cmap="inferno", vmin=0, vmax=vmax)
        ax.set_title(f"({chr(ord('A') + k)}) {key}")
        ax.set_xlabel("feature dimension (sorted by baseline mean F)")
        if k == 0 and len(classnames) <= 60:
            ax.set_yticks(range(len(classnames)), classnames, fontsize=6)
        else:
            ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), label="one-vs-rest F-score", fraction=0.03)
    if title:
        fig.suptitle(title)
    return _save(fig, out_png)


def _shots_label(setting: str) -> str:
    m = re.fullmatch(r"(\d+)shot", setting)
    return m.group(1) if m else setting


def accuracy_vs_shots(table_df: pd.DataFrame, out_png: str | os.PathLike,
                      methods=SHOTS_METHODS, metric: str = "hm") -> Path:
    """HM vs number of shots per dataset and the Average — the paper's Figure 5.

    `table_df` is Table 1 (`ame.report.tables.table1`). x: the K-shot settings by ascending K,
    then "full" at the right; one line (± std bars) per method of `methods` that is present; the
    zero-shot HM as a dashed horizontal line.
    """
    df = table_df[table_df["method"].isin(list(methods) + ["zeroshot"])]
    trained = df[df["method"] != "zeroshot"]
    settings = _sorted_settings(set(trained["setting"]))
    datasets = sorted(set(df["dataset"]), key=dataset_key)
    n = max(1, len(datasets))
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.0 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    fallback = dict(zip(methods, colormaps["tab10"](np.arange(len(methods)))))
    colors = {m: METHODS[m].colour if m in METHODS else fallback[m] for m in methods}
    x = {s: i for i, s in enumerate(settings)}
    handles = {}
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        for method in methods:
            rows = sub[sub["method"] == method]
            rows = rows.loc[sorted(rows.index, key=lambda i: setting_key(rows.at[i, "setting"]))]
            if rows.empty:
                continue
            handles[method] = ax.errorbar([x[s] for s in rows["setting"]], rows[metric],
                                          yerr=rows[f"{metric}_std"],
                                          marker=METHODS[method].marker if method in METHODS else "o",
                                          capsize=2, color=colors[method], label=method)
        zs = sub[sub["method"] == "zeroshot"]
        if len(zs) and pd.notna(zs[metric].iloc[0]):
            handles["zeroshot"] = ax.axhline(zs[metric].iloc[0], linestyle="--", color="gray",
                                             label="zeroshot")
        ax.set_title(ds if ds != AVERAGE else "Average")
        ax.set_xticks(range(len(settings)), [_shots_label(s) for s in settings])
        ax.set_xlabel("shots per class")
        ax.set_ylabel(metric.upper())
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets):]:
        ax.set_axis_off()
    if not datasets:
        axes[0].text(0.5, 0.5, "no base-to-new runs", ha="center", va="center")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=len(handles), frameon=False)
    return _save(fig, out_png)


def training_curves(histories: Mapping[str, object], out_png: str | os.PathLike,
                    title: str | None = None) -> Path:
    """Per-epoch KD loss, RSM entropy H(M) and base accuracy for several runs of one cell
    (e.g. {"pkd": history.csv, "pkd_rsm": history.csv}); values may be DataFrames or paths."""
    panels = [("kd_loss", "KD loss"), ("rsm_entropy", "H(M)"), ("base_acc", "base accuracy")]
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels))
    # One colour per run across panels, even where a run has no values (pkd logs no H(M)).
    colors = colormaps["tab10"](np.arange(len(histories)) % 10)
    handles = []
    for color, (label, src) in zip(colors, histories.items()):
        h = src if isinstance(src, pd.DataFrame) else pd.read_csv(src)
        handles.append(Line2D([], [], color=color, marker="."))
        for ax, (col, _) in zip(axes, panels):
            if col in h and h[col].notna().any():
                ax.plot(h["epoch"], h[col], marker=".", color=color)
    for ax, (_, name) in zip(axes, panels):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.legend(handles, list(histories), loc="outside right center", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return _save(fig, out_png)
