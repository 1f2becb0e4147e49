"""Figures: Fig. 3 F-score heatmaps, Fig. 4 t-SNE grid, Fig. 5 accuracy vs shots, training curves.

Each figure is checked as a reader would: its panels, titles, axis labels and legend entries (the
drawn Figure is captured as it is saved), its PNG + PDF pair, and identical bytes for identical inputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ame.report import figures
from ame.spec.methods import METHODS

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF"


@pytest.fixture
def drawn(monkeypatch):
    """The Figures that the figure functions save, in order."""
    seen = []
    real = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, stem: seen.append(fig) or real(fig, stem))
    return seen


def embeddings(seed=0, n=48, d=6, classes=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    feats = rng.normal(size=(n, d))
    feats[:, 0] += 4 * (labels == 0)        # dimension 0 singles out class 0
    feats[:, d - 1] = 2.0                   # constant dimension
    return {"features": feats.astype("float32"), "labels": labels, "classnames": np.array(classes)}


def panels(fig):
    """The data panels of a figure (colour bars left out), in drawing order."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def assert_pair(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    assert paths[0].read_bytes().startswith(PNG) and paths[1].read_bytes().startswith(PDF)


# ---------------------------------------------------------------------------------- style

def test_methods_never_differ_by_colour_alone_and_use_the_okabe_ito_palette():
    for a, b in itertools.combinations(METHODS, 2):
        sa, sb = figures.method_style(a), figures.method_style(b)
        assert (sa["marker"], sa["linestyle"]) != (sb["marker"], sb["linestyle"]), (a, b)
        assert sa["marker"] != sb["marker"], (a, b)
    assert {figures.method_style(m)["color"] for m in METHODS} <= {*figures.OKABE_ITO, "#999999"}


def test_class_colours_are_okabe_ito_up_to_eight_then_viridis():
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    assert [tuple(c) for c in figures.class_colors(3)] == [to_rgba(c) for c in figures.OKABE_ITO[:3]]
    many = figures.class_colors(37)
    assert len({tuple(c) for c in many}) == 37
    assert tuple(many[0]) == tuple(colormaps["viridis"](0.0))


# ---------------------------------------------------------------------------------- files

def shots_table(coincide=False):
    """Table 1 rows for Digits and the Average: pkd and pkd_rsm (equal when `coincide`) at three
    settings, listed out of order, and the zero-shot row."""
    rows = []
    for ds in ("Digits", "Average"):
        rows.append({"dataset": ds, "method": "zeroshot", "setting": "zeroshot", "hm": 60.0, "hm_std": 0.0})
        for m, off in (("pkd", 0), ("pkd_rsm", 0 if coincide else 1)):
            for s, hm in (("full", 80), ("4shot", 70), ("16shot", 75)):
                rows.append({"dataset": ds, "method": m, "setting": s, "hm": hm + off, "hm_std": 0.5})
    return pd.DataFrame(rows)


def test_a_figure_is_a_png_and_a_pdf_with_identical_bytes_for_identical_inputs(tmp_path):
    a = figures.accuracy_vs_shots(shots_table(), tmp_path / "a")
    b = figures.accuracy_vs_shots(shots_table(), tmp_path / "b")
    assert_pair(a, tmp_path / "a")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    pdf = a[1].read_bytes()
    assert b"CreationDate" not in pdf and b"Matplotlib" not in pdf and b"matplotlib" not in pdf


def test_figure_paths_name_one_file_per_format():
    assert [p.name for p in figures.figure_paths("x/fscore_Food101")] == ["fscore_Food101.png",
                                                                           "fscore_Food101.pdf"]


# ---------------------------------------------------------------------------------- Fig. 5

def test_accuracy_vs_shots_has_a_panel_per_dataset_the_average_last_and_one_legend(tmp_path, drawn):
    figures.accuracy_vs_shots(shots_table(), tmp_path / "a")
    fig = drawn[0]
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["Digits", "Average over datasets"]
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16", "full"]
        assert ax.get_xlabel() == "shots per class" and ax.get_ylabel() == "HM (%)"
    assert legend_texts(fig) == ["PromptKD", "PKD + RSM", "CLIP (student zero-shot)"]
    assert fig.get_suptitle().startswith("Fig. 5")


def test_coinciding_methods_stay_distinguishable(tmp_path, drawn):
    figures.accuracy_vs_shots(shots_table(coincide=True), tmp_path / "a")
    ax = panels(drawn[0])[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}     # each errorbar's data line
    pkd, rsm = lines["PromptKD"], lines["PKD + RSM"]
    assert list(pkd.get_ydata()) == list(rsm.get_ydata())           # the same values ...
    assert pkd.get_marker() != rsm.get_marker()                     # ... drawn apart
    assert pkd.get_linestyle() != rsm.get_linestyle()
    dodge = np.asarray(rsm.get_xdata()) - np.asarray(pkd.get_xdata())
    assert (dodge > 0).all() and (dodge < 0.5).all()


# ---------------------------------------------------------------------------------- Fig. 4

def test_stratified_sample_is_capped_keeps_every_class_in_proportion_and_is_deterministic():
    rng = np.random.default_rng(0)
    labels = rng.choice(37, size=7000, p=np.r_[np.full(36, 0.027), 0.028])
    labels[:3] = 36                                           # a class of a handful of images
    idx = figures.stratified_sample(labels, 2000, seed=1)
    assert len(idx) == 2000 and (np.diff(idx) > 0).all()
    counts = np.bincount(labels, minlength=37)
    drawn_counts = np.bincount(labels[idx], minlength=37)
    assert (drawn_counts >= 1).all()
    assert np.abs(drawn_counts - counts * 2000 / len(labels)).max() <= 1
    assert (idx == figures.stratified_sample(labels, 2000, seed=1)).all()
    assert (idx != figures.stratified_sample(labels, 2000, seed=2)).any()
    assert (figures.stratified_sample(labels[:100], 2000) == np.arange(100)).all()


def test_stratified_sample_keeps_a_class_rarer_than_its_share():
    labels = np.r_[np.zeros(999, int), 1]
    idx = figures.stratified_sample(labels, 10, seed=1)
    assert len(idx) == 10 and set(labels[idx]) == {0, 1}


def test_pca_keeps_fifty_components_or_fewer_when_the_data_has_fewer():
    x = np.random.default_rng(0).normal(size=(80, 64))
    assert figures.pca(x).shape == (80, 50)
    assert figures.pca(x[:, :8]).shape == (80, 8)
    assert np.allclose(figures.pca(x), figures.pca(x))


def test_tsne_grid_has_a_column_per_setting_a_row_per_method_and_embeds_pca50_samples(tmp_path, monkeypatch,
                                                                                     drawn):
    seen = []
    real = figures._tsne
    monkeypatch.setattr(figures, "_tsne", lambda x, rs: seen.append((x.shape, rs)) or real(x, rs))
    pairs = {s: {"pkd_rsm": embeddings(1, n=90, d=64), "pkd": embeddings(0, n=90, d=64)}
             for s in ("full", "30shot", "4shot")}
    out = figures.tsne_figure(pairs, tmp_path / "tsne_Pets", title="Fig. 4", max_points=60)
    assert_pair(out, tmp_path / "tsne_Pets")
    assert seen == [((60, 50), figures.TSNE_SEED)] * 6               # PCA-50, ≤ 60 stratified points, seed 1
    axes = np.array(panels(drawn[0])).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["4 shots", "30 shots", "full"]
    assert [ax.get_ylabel().splitlines()[0] for ax in axes[:, 0]] == ["PromptKD", "PKD + RSM"]
    assert all(ax.get_xlabel() == "t-SNE 1" for ax in axes.ravel())
    assert legend_texts(drawn[0]) == ["a", "b", "c"]
    assert drawn[0].get_suptitle() == "Fig. 4"


def test_tsne_defaults_are_the_papers_figure_settings():
    assert (figures.TSNE_MAX_POINTS, figures.TSNE_PCA_DIMS, figures.TSNE_SEED) == (2000, 50, 1)


def test_tsne_with_many_classes_has_a_class_colour_bar_instead_of_a_legend(tmp_path, drawn):
    names = tuple(f"c{i}" for i in range(50))
    pairs = {"16shot": {"pkd": embeddings(0, n=150, classes=names), "pkd_rsm": embeddings(1, n=150, classes=names)}}
    figures.tsne_figure(pairs, tmp_path / "t")
    fig = drawn[0]
    assert not fig.legends
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "class index" in bars[0].get_ylabel()


# ---------------------------------------------------------------------------------- Fig. 3

def test_fscores_are_one_vs_rest_per_class_and_zero_for_constant_features():
    e = embeddings()
    f = figures.fscores(e["features"].astype(float), e["labels"], 3)
    assert f.shape == (3, 6)
    assert not np.isnan(f).any()
    assert (f[:, 5] == 0).all()
    assert f[0].argmax() == 0 and f[0, 0] > 10 * f[1, 0]


def test_fscore_heatmaps_show_a_baseline_and_an_rsm_panel_on_one_viridis_scale(tmp_path, drawn):
    out = figures.fscore_heatmaps({"pkd": embeddings(0), "pkd_rsm": embeddings(1)}, tmp_path / "f", title="Fig. 3")
    assert_pair(out, tmp_path / "f")
    fig = drawn[0]
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["(A) PromptKD", "(B) PKD + RSM"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    images = [ax.get_images()[0] for ax in axes]
    assert {im.get_cmap().name for im in images} == {"viridis"}
    assert len({im.get_clim() for im in images}) == 1
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "one-vs-rest F-score"


# ---------------------------------------------------------------------------------- curves

def test_training_curves_have_three_labelled_panels_and_a_legend_even_without_entropy_for_the_baseline(
        tmp_path, drawn):
    h = pd.DataFrame({"epoch": [1, 2, 3], "lr": 0.005, "kd_loss": [3, 2, 1], "rsm_entropy": np.nan,
                      "total_loss": [3, 2, 1], "base_acc": [50, 60, 70]})
    out = figures.training_curves({"pkd": h, "pkd_rsm": h.assign(rsm_entropy=[2, 1, 0.1])}, tmp_path / "c")
    assert_pair(out, tmp_path / "c")
    axes = panels(drawn[0])
    assert len(axes) == 3 and all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in axes)
    assert legend_texts(drawn[0]) == ["PromptKD", "PKD + RSM"]


def test_a_baseline_curve_stays_visible_on_an_identical_rsm_curve(tmp_path, drawn):
    h = pd.DataFrame({"epoch": [1, 2, 3], "lr": 0.005, "kd_loss": [3, 2, 1], "rsm_entropy": [2, 1, 0.5],
                      "total_loss": [3, 2, 1], "base_acc": [50, 60, 70]})
    figures.training_curves({"pkd": h, "pkd_rsm": h}, tmp_path / "c")
    kd = panels(drawn[0])[0]
    pkd, rsm = kd.get_lines()
    assert list(pkd.get_ydata()) == list(rsm.get_ydata())
    assert pkd.get_zorder() > rsm.get_zorder()                        # the dashed baseline on top ...
    assert pkd.get_markerfacecolor() == "white" and pkd.get_linestyle() == "--"   # ... hollow, dashed
    assert rsm.get_markerfacecolor() != "white" and pkd.get_marker() != rsm.get_marker()
