"""Figures: F-scores, t-SNE grid, accuracy vs shots, training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ame.report import figures

PNG = b"\x89PNG\r\n\x1a\n"


def embeddings(seed=0, n=48, d=6, classes=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    feats = rng.normal(size=(n, d))
    feats[:, 0] += 4 * (labels == 0)        # dimension 0 singles out class 0
    feats[:, d - 1] = 2.0                   # constant dimension
    return {"features": feats.astype("float32"), "labels": labels, "classnames": np.array(classes)}


def test_fscores_are_one_vs_rest_per_class_and_zero_for_constant_features():
    e = embeddings()
    f = figures.fscores(e["features"].astype(float), e["labels"], 3)
    assert f.shape == (3, 6)
    assert not np.isnan(f).any()
    assert (f[:, 5] == 0).all()
    assert f[0].argmax() == 0 and f[0, 0] > 10 * f[1, 0]


def test_subsample_is_deterministic_sorted_and_capped():
    idx = figures.subsample(1000, 600)
    assert len(idx) == 600 and (np.diff(idx) > 0).all()
    assert (idx == figures.subsample(1000, 600)).all()
    assert (figures.subsample(10, 600) == np.arange(10)).all()


def test_fscore_heatmaps_write_a_png(tmp_path):
    out = figures.fscore_heatmaps({"pkd": embeddings(0), "pkd_rsm": embeddings(1)}, tmp_path / "f.png")
    assert out.read_bytes().startswith(PNG)


def test_tsne_grid_subsamples_and_writes_a_png(tmp_path, monkeypatch):
    seen = []
    real = figures._tsne
    monkeypatch.setattr(figures, "_tsne", lambda x, rs: seen.append(len(x)) or real(x, rs))
    pairs = {"16shot": {"pkd": embeddings(0, n=60), "pkd_rsm": embeddings(1, n=60)}}
    out = figures.tsne_figure(pairs, tmp_path / "t.png", max_points=40)
    assert out.read_bytes().startswith(PNG) and seen == [40, 40]


def shots_table():
    rows = []
    for ds in ("Digits", "Average"):
        rows.append({"dataset": ds, "method": "zeroshot", "setting": "zeroshot", "hm": 60.0, "hm_std": 0.0})
        for m, off in (("pkd", 0), ("pkd_rsm", 1)):
            for s, hm in (("full", 80), ("4shot", 70), ("16shot", 75)):
                rows.append({"dataset": ds, "method": m, "setting": s, "hm": hm + off, "hm_std": 0.5})
    return pd.DataFrame(rows)


def test_accuracy_vs_shots_is_deterministic(tmp_path):
    a = figures.accuracy_vs_shots(shots_table(), tmp_path / "a.png").read_bytes()
    b = figures.accuracy_vs_shots(shots_table(), tmp_path / "b.png").read_bytes()
    assert a.startswith(PNG) and a == b


def test_training_curves_write_a_png_even_without_entropy_for_the_baseline(tmp_path):
    h = pd.DataFrame({"epoch": [1, 2, 3], "lr": 0.005, "kd_loss": [3, 2, 1], "rsm_entropy": np.nan,
                      "total_loss": [3, 2, 1], "base_acc": [50, 60, 70]})
    out = figures.training_curves({"pkd": h, "pkd_rsm": h.assign(rsm_entropy=[2, 1, 0.1])},
                                  tmp_path / "c.png")
    assert out.read_bytes().startswith(PNG)
