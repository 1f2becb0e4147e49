"""The paper's figures: F-score heatmaps (Fig. 3), t-SNE (Fig. 4), accuracy vs shots (Fig. 5), plus
per-epoch training curves.

Every figure is written twice with one stem, as `<stem>.png` (120 dpi) and `<stem>.pdf`, and
neither file carries a version stamp or a creation date, so identical inputs give identical bytes.
Rendering uses the Agg canvas directly (no pyplot, so no global backend state); files are written
atomically. Colours are colour-blind-safe: a method keeps its registry style everywhere (an
Okabe–Ito colour with its own marker and line style, so no two methods differ by colour alone),
heatmaps use viridis, and classes take Okabe–Ito colours up to eight, viridis beyond.
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
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ame import contracts
from ame.report.figure_files import save_figure_files
from ame.report.order import dataset_key, setting_key
from ame.report.plan import FORMATS
from ame.report.reference import AVERAGE
from ame.spec.methods import DISTILL_METHODS, METHODS, ZEROSHOT, method_order

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
HEATMAP_CMAP = "viridis"       # perceptual and colour-blind-safe; brighter = more discriminative
CLASS_CMAP = "viridis"         # classes beyond the eight Okabe–Ito colours
MAX_LEGEND_CLASSES = 40        # more classes get a colour bar of class indices instead
TSNE_MAX_POINTS = 2000         # test images per t-SNE panel (stratified by class)
TSNE_PCA_DIMS = 50             # features are reduced to this many principal components first
TSNE_SEED = 1                  # the sample and the embedding
SHOTS_DODGE = 0.1              # horizontal offset between methods in Fig. 5, in x-tick units
SHOTS_METHODS = DISTILL_METHODS  # every trained method present (Fig. 5: PKD, Simple + RSM, PKD + RSM)


def figure_paths(stem: str | os.PathLike) -> list[Path]:
    """The files of the figure `stem` (a path without extension): one per format in FORMATS."""
    return [Path(f"{os.fspath(stem)}.{fmt}") for fmt in FORMATS]


def save_figure(fig: Figure, stem: str | os.PathLike) -> list[Path]:
    """Write `fig` as `<stem>.png` and `<stem>.pdf` (`figure_files.save_figure_files`); the paths."""
    return save_figure_files(fig, figure_paths(stem))


def method_style(name: str) -> dict:
    """Matplotlib keyword arguments that draw method `name` as everywhere else: its registry colour,
    marker, line style and label (black circles, solid, for a name the registry does not know).
    Methods without RSM get hollow markers and are drawn on top, so that where a baseline and its
    +RSM method coincide both stay visible (the dashed line over the solid, the hollow marker
    around the filled one)."""
    m = METHODS.get(name)
    if m is None:
        return {"color": "#000000", "marker": "o", "linestyle": "-", "label": name}
    style = {"color": m.colour, "marker": m.marker, "linestyle": m.linestyle, "label": m.label}
    if m.trains and not m.rsm:
        style.update(markerfacecolor="white", zorder=3)
    return style


def method_label(name: str) -> str:
    return method_style(name)["label"]


def setting_label(setting: str) -> str:
    """'4shot' -> '4 shots', 'full' -> 'full'."""
    m = re.fullmatch(r"(\d+)shot", setting)
    return f"{m.group(1)} shots" if m else setting


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


# ------------------------------------------------------------------------------ Fig. 4: t-SNE

def stratified_sample(labels: np.ndarray, max_points: int = TSNE_MAX_POINTS,
                      seed: int = TSNE_SEED) -> np.ndarray:
    """Sorted indices of at most `max_points` items drawn per class in proportion to its size
    (largest remainders), at least one of every class while there are no more classes than
    `max_points`; all items when there are no more than `max_points`. Depends on (labels, seed) only."""
    labels = np.asarray(labels)
    n = labels.size
    if n <= max_points:
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * max_points / n
    quota = np.floor(exact).astype(int)
    if len(classes) <= max_points:
        quota = np.maximum(quota, 1)
    while quota.sum() > max_points:              # the minimum of one took points from large classes
        quota[np.argmax(quota)] -= 1
    remainder = exact - np.floor(exact)
    for c in np.argsort(-remainder, kind="stable"):
        if quota.sum() >= max_points:
            break
        if quota[c] < counts[c]:
            quota[c] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
              for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(chosen))


def pca(features: np.ndarray, dims: int = TSNE_PCA_DIMS) -> np.ndarray:
    """`features` (N×d) projected on their first min(dims, N, d) principal components (centred;
    exact SVD, so deterministic)."""
    from sklearn.decomposition import PCA

    k = min(dims, *features.shape)
    if k < 1:
        return features
    return PCA(n_components=k, svd_solver="full").fit_transform(features)


def _tsne(features: np.ndarray, random_state: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = features.shape[0]
    if n < 3:
        return np.zeros((n, 2))
    perplexity = min(30.0, max(1.0, (n - 1) / 3))
    return TSNE(n_components=2, init="pca", random_state=random_state, perplexity=perplexity
                ).fit_transform(features)


def class_colors(n: int) -> np.ndarray:
    """n distinct, colour-blind-safe RGBA colours: Okabe–Ito up to eight, else evenly spaced on viridis."""
    from matplotlib.colors import to_rgba_array

    if n <= len(OKABE_ITO):
        return to_rgba_array(OKABE_ITO[:n])
    return colormaps[CLASS_CMAP](np.linspace(0.0, 1.0, n))


def _class_key(fig: Figure, axes, classnames: list[str]) -> None:
    """A legend of the classes (a colour bar of class indices when there are too many to list)."""
    n = len(classnames)
    if n > MAX_LEGEND_CLASSES:
        mappable = ScalarMappable(norm=Normalize(0, n - 1), cmap=CLASS_CMAP)
        fig.colorbar(mappable, ax=list(np.ravel(axes)), label=f"class index (0–{n - 1})", fraction=0.03)
        return
    colors = class_colors(n)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[i], markersize=5) for i in range(n)]
    fig.legend(handles, classnames, loc="outside right center", fontsize=7, title="class",
               ncols=max(1, math.ceil(n / 20)), frameon=False)


def tsne_figure(pairs: Mapping[str, Mapping[str, object]], stem: str | os.PathLike,
                title: str | None = None, max_points: int = TSNE_MAX_POINTS,
                pca_dims: int = TSNE_PCA_DIMS, seed: int = TSNE_SEED) -> list[Path]:
    """t-SNE of student image features without vs with RSM — the paper's Figure 4.

    `pairs` maps setting -> {method: embeddings.npz path or mapping}: one column per setting
    (zero < K-shot by K < full), one row per method in registry order (the baseline, then +RSM).
    Each panel reduces all test features to `pca_dims` principal components, draws a class-
    stratified sample of at most `max_points` images (the same images in every row: it depends on
    the labels and `seed` only), and embeds it with t-SNE (init="pca", random_state=`seed`);
    points are coloured by class, with one class legend. Writes `<stem>.png` and `<stem>.pdf`.
    """
    settings = sorted(pairs, key=setting_key)
    methods = sorted({m for s in settings for m in pairs[s]}, key=method_order)
    if not settings or not methods:
        raise ValueError("tsne_figure: no embeddings given")
    fig = Figure(figsize=(3.0 * len(settings) + 2.6, 2.9 * len(methods) + 0.6), layout="constrained")
    axes = fig.subplots(len(methods), len(settings), squeeze=False)
    classnames: list[str] = []
    for j, setting in enumerate(settings):
        for i, method in enumerate(methods):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel(f"{method_label(method)}\nt-SNE 2" if j == 0 else "t-SNE 2")
            ax.set_title(setting_label(setting) if i == 0 else "")
            src = pairs[setting].get(method)
            if src is None:
                ax.text(0.5, 0.5, "no run", ha="center", va="center", transform=ax.transAxes)
                continue
            features, labels, names = load_embeddings(src)
            classnames = classnames or names
            idx = stratified_sample(labels, max_points, seed)
            xy = _tsne(pca(features, pca_dims)[idx], seed)
            ax.scatter(xy[:, 0], xy[:, 1], c=class_colors(len(names))[labels[idx]], s=5, linewidths=0,
                       rasterized=True)
    _class_key(fig, axes, classnames)
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ Fig. 3: F-scores

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


def fscore_heatmaps(pairs: Mapping[str, object], stem: str | os.PathLike,
                    title: str | None = None) -> list[Path]:
    """Class × feature-dimension F-score heatmaps, baseline (A) vs +RSM (B) — the paper's Figure 3.

    `pairs` maps a method id (the first is the baseline, e.g. "pkd", then "pkd_rsm") to embeddings.
    Columns of both panels are ordered by the baseline's mean F-score over classes (descending), so a
    column is the same dimension in both; one viridis scale (brighter = more discriminative) is
    shared, its colour bar the key. Writes `<stem>.png` and `<stem>.pdf`.
    """
    keys = list(pairs)
    if len(keys) < 2:
        raise ValueError("fscore_heatmaps: need a baseline and an +RSM embedding")
    mats, classnames = [], []
    for key in keys:
        features, labels, names = load_embeddings(pairs[key])
        classnames = classnames or names
        mats.append(fscores(features, labels, len(names)))
    order = np.argsort(-mats[0].mean(axis=0), kind="stable")
    mats = [m[:, order] for m in mats]
    vmax = max(float(m.max()) for m in mats) or 1.0
    show_names = len(classnames) <= 60
    fig = Figure(figsize=(4.6 * len(mats) + (2.4 if show_names else 1.2),
                          max(3.2, 0.16 * len(classnames) + 1.8) if show_names else 5.0),
                 layout="constrained")
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    image = None
    for k, (ax, key, m) in enumerate(zip(axes, keys, mats)):
        image = ax.imshow(m, aspect="auto", interpolation="nearest", cmap=HEATMAP_CMAP, vmin=0, vmax=vmax)
        ax.set_title(f"({chr(ord('A') + k)}) {method_label(key)}")
        ax.set_xlabel("feature dimension (sorted by (A)'s mean F)")
        if k == 0 and show_names:
            ax.set_yticks(range(len(classnames)), classnames, fontsize=6)
        else:
            ax.set_yticks([])
        ax.set_ylabel("class" if show_names or k > 0 else f"class (0–{len(classnames) - 1})")
    fig.colorbar(image, ax=list(axes), label="one-vs-rest F-score", fraction=0.03)
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ Fig. 5: shots

def _dodge(k: int, n: int) -> float:
    return (k - (n - 1) / 2) * SHOTS_DODGE


def accuracy_vs_shots(table_df: pd.DataFrame, stem: str | os.PathLike,
                      methods=SHOTS_METHODS, metric: str = "hm") -> list[Path]:
    """HM vs number of shots per dataset and the Average — the paper's Figure 5.

    `table_df` is Table 1 (`ame.report.tables.table1`). One panel per dataset, the Average last.
    x: the K-shot settings by ascending K, then "full" at the right; one line (mean ± std over
    seeds) per method of `methods` that is present, in its registry style, each shifted by a small
    horizontal dodge so that lines that coincide stay visible; the student's zero-shot HM as a
    horizontal line. Writes `<stem>.png` and `<stem>.pdf`.
    """
    df = table_df[table_df["method"].isin([*methods, ZEROSHOT])]
    trained = df[df["method"] != ZEROSHOT]
    settings = sorted(set(trained["setting"]), key=setting_key)
    present = sorted(set(trained["method"]), key=method_order)
    datasets = sorted(set(df["dataset"]), key=dataset_key)
    n = max(1, len(datasets))
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.4 * ncols + 0.4, 2.9 * nrows + 1.1), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = {s: i for i, s in enumerate(settings)}
    handles: dict[str, object] = {}
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        for k, method in enumerate(present):
            rows = sub[sub["method"] == method]
            rows = rows.loc[sorted(rows.index, key=lambda i: setting_key(rows.at[i, "setting"]))]
            if rows.empty:
                continue
            style = method_style(method)
            handles[style["label"]] = ax.errorbar(
                [x[s] + _dodge(k, len(present)) for s in rows["setting"]], rows[metric],
                yerr=rows[f"{metric}_std"], capsize=2, markersize=5, linewidth=1.4, **style)
        zs = sub[sub["method"] == ZEROSHOT]
        if len(zs) and pd.notna(zs[metric].iloc[0]):
            style = method_style(ZEROSHOT)
            handles[style["label"]] = ax.axhline(zs[metric].iloc[0], color=style["color"],
                                                 linestyle=style["linestyle"], label=style["label"])
        ax.set_title("Average over datasets" if ds == AVERAGE else ds)
        ax.set_xticks(range(len(settings)), [_shots_tick(s) for s in settings])
        ax.set_xlim(-0.5, len(settings) - 0.5)
        ax.set_xlabel("shots per class")
        ax.set_ylabel(f"{metric.upper()} (%)")
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets):]:
        ax.set_axis_off()
    if not datasets:
        axes[0].text(0.5, 0.5, "no base-to-new runs", ha="center", va="center")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=len(handles), frameon=False)
    fig.suptitle(f"Fig. 5 — base-to-new {metric.upper()} vs shots per class "
                 "(mean ± std over seeds; 'full' = the whole training set)")
    return save_figure(fig, stem)


def _shots_tick(setting: str) -> str:
    m = re.fullmatch(r"(\d+)shot", setting)
    return m.group(1) if m else setting


# ------------------------------------------------------------------------------ training curves

def training_curves(histories: Mapping[str, object], stem: str | os.PathLike,
                    title: str | None = None) -> list[Path]:
    """Per-epoch KD loss, RSM entropy H(M) and base accuracy for several runs of one cell
    (e.g. {"pkd": history.csv, "pkd_rsm": history.csv}; values may be DataFrames or paths), each
    method in its registry style. Writes `<stem>.png` and `<stem>.pdf`."""
    panels = [("kd_loss", "KD loss", "KD loss"), ("rsm_entropy", "RSM entropy H(M)", "H(M) (nats)"),
              ("base_acc", "base accuracy", "base accuracy (%)")]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels))
    handles = []
    for method, src in histories.items():
        h = src if isinstance(src, pd.DataFrame) else pd.read_csv(src)
        style = method_style(method)
        # One handle per run, even where a run has no values in a panel (pkd logs no H(M)).
        handles.append(Line2D([], [], **style))
        for ax, (col, _, _) in zip(axes, panels):
            if col in h and h[col].notna().any():
                ax.plot(h["epoch"], h[col], markersize=4, **style)
    for ax, (_, name, ylabel) in zip(axes, panels):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.legend(handles, [h.get_label() for h in handles], loc="outside right center", fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)
