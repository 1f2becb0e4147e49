"""Scores per run and their aggregation over seeds and datasets, and the paired effect of RSM.

Aggregation (design §2), for one (dataset, method, setting) cell with seeds s:
  Base = mean_s Base_s, New = mean_s New_s, HM = HM(Base, New)  (HM of the means);
  base_std, new_std, hm_std = population std (ddof=0) over seeds of Base_s, New_s, HM_s, where
  HM_s is the run's own HM.
Average row of one (method, setting), over the datasets D that have that cell:
  Base = mean_d Base_d, New = mean_d New_d (the per-dataset means above), HM = HM(Base, New);
  ± = population std over seeds s of the per-seed averages Base_s = mean_d Base_{d,s},
  New_s = mean_d New_{d,s}, HM_s = HM(Base_s, New_s), using the seeds present for every d ∈ D
  (n_seeds of the Average row counts those seeds).
Cross-dataset accuracy follows the same rules with one score (accuracy) instead of three.
Paired effect of RSM, per (dataset, setting, seed) present for both methods of a pair:
  Δ = HM(method_rsm) − HM(method) (accuracy for xd); mean Δ over seeds with a percentile
  bootstrap 95 % CI resampling seeds; the Average pools every (dataset, seed) pair and resamples
  datasets, then seeds within each drawn dataset (a two-stage bootstrap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ame.metrics import harmonic_mean
from ame.report import reference
from ame.report.order import dataset_key, setting_key
from ame.spec.methods import method_order, rsm_pairs

RSM_PAIRS = tuple(rsm_pairs())


SELECTIONS = ("best", "last")


N_BOOT = 10_000


BOOT_SEED = 0


EFFECT_COLUMNS = [
    "task", "baseline", "method", "dataset", "setting", "selection", "metric", "n", "n_datasets",
    "mean_delta", "ci_low", "ci_high",
]



def _pstd(x) -> float:
    return float(np.std(np.asarray(x, dtype=float), ddof=0))



def select_scores(runs: pd.DataFrame, selection: str = "best") -> pd.DataFrame:
    """Per-run scores under a selection rule: task, dataset, setting, method, seed, base, new, hm,
    accuracy.

    "best" takes the recorded (selected-checkpoint) scores and refuses runs that recorded
    selection "last" (their best epoch is not stored); "last" takes the last-epoch scores, except
    for runs that never trained (no epochs at all, e.g. zero-shot), whose only scores are used.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    runs = runs.copy()
    cols = ["base", "new", "hm", "accuracy"]
    if selection == "best":
        wrong = runs[runs["selection"] != "best"]
        if len(wrong):
            raise ValueError(
                f"{len(wrong)} run(s) recorded selection 'last', so their best-epoch scores are not "
                f"available (e.g. {wrong['run_dir'].iloc[0]}); report with selection='last' or rerun "
                "them with best-epoch selection")
    else:
        trained = runs["best_epoch"].notna() | runs["last_epoch"].notna()
        for c in cols:
            runs[c] = runs[f"last_{c}"].where(trained, runs[c])
    return runs[["task", "dataset", "setting", "method", "seed", *cols]].reset_index(drop=True)



def _cell_b2n(g: pd.DataFrame) -> dict:
    b, n = g["base"].mean(), g["new"].mean()
    return {"base": b, "base_std": _pstd(g["base"]), "new": n, "new_std": _pstd(g["new"]),
            "hm": harmonic_mean(b, n), "hm_std": _pstd(g["hm"]), "n_seeds": len(g), "n_datasets": 1}



def _cell_xd(g: pd.DataFrame) -> dict:
    return {"accuracy": g["accuracy"].mean(), "accuracy_std": _pstd(g["accuracy"]),
            "n_seeds": len(g), "n_datasets": 1}



def _common_seed_frame(g: pd.DataFrame, value: str) -> pd.DataFrame:
    """dataset × seed pivot of `value`, restricted to seeds that every dataset has."""
    wide = g.pivot(index="seed", columns="dataset", values=value)
    return wide.dropna(axis=0, how="any")



def _average_b2n(g: pd.DataFrame) -> dict:
    per_ds = g.groupby("dataset")[["base", "new"]].mean()
    b, n = per_ds["base"].mean(), per_ds["new"].mean()
    base_s = _common_seed_frame(g, "base").mean(axis=1)
    new_s = _common_seed_frame(g, "new").mean(axis=1)
    hm_s = harmonic_mean(base_s.to_numpy(), new_s.to_numpy())
    return {"base": b, "base_std": _pstd(base_s), "new": n, "new_std": _pstd(new_s),
            "hm": harmonic_mean(b, n), "hm_std": _pstd(hm_s), "n_seeds": len(base_s),
            "n_datasets": len(per_ds)}



def _average_xd(g: pd.DataFrame) -> dict:
    per_ds = g.groupby("dataset")["accuracy"].mean()
    acc_s = _common_seed_frame(g, "accuracy").mean(axis=1)
    return {"accuracy": per_ds.mean(), "accuracy_std": _pstd(acc_s), "n_seeds": len(acc_s),
            "n_datasets": len(per_ds)}



def aggregate(scores: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per-(dataset, method, setting) rows plus one Average row per (method, setting), for one
    task, following the module docstring's rules. Returns dataset, method, setting, the score
    columns with their *_std, n_seeds, n_datasets."""
    s = scores[scores["task"] == task]
    cell, avg = (_cell_b2n, _average_b2n) if task == "base2new" else (_cell_xd, _average_xd)
    rows = []
    for (ds, method, setting), g in s.groupby(["dataset", "method", "setting"], sort=False):
        rows.append({"dataset": ds, "method": method, "setting": setting, **cell(g)})
    for (method, setting), g in s.groupby(["method", "setting"], sort=False):
        rows.append({"dataset": reference.AVERAGE, "method": method, "setting": setting, **avg(g)})
    return pd.DataFrame(rows)



def bootstrap_ci(groups, n_boot: int = N_BOOT, rng_seed: int = BOOT_SEED, level: float = 0.95):
    """Percentile bootstrap CI of the mean of all values in `groups` (one array per dataset).

    One group: resample its values with replacement. Several: draw datasets with replacement,
    then values within each drawn dataset with replacement, and pool (a two-stage bootstrap).
    Returns (low, high); with a single value the interval is that value.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return float("nan"), float("nan")
    rng = np.random.default_rng(rng_seed)
    sizes = np.array([len(g) for g in groups])
    width = sizes.max()
    padded = np.zeros((len(groups), width))
    for i, g in enumerate(groups):
        padded[i, : len(g)] = g
    if len(groups) == 1:
        d_idx = np.zeros((n_boot, 1), dtype=int)
    else:
        d_idx = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    n_sel = sizes[d_idx]
    s_idx = np.floor(rng.random((n_boot, len(groups), width)) * n_sel[..., None]).astype(int)
    vals = padded[d_idx[..., None], s_idx]
    mask = np.arange(width)[None, None, :] < n_sel[..., None]
    means = (vals * mask).sum(axis=(1, 2)) / mask.sum(axis=(1, 2))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)



def rsm_effect(scores: pd.DataFrame, task: str, selection: str = "best",
               pairs=RSM_PAIRS, n_boot: int = N_BOOT, rng_seed: int = BOOT_SEED) -> pd.DataFrame:
    """Paired Δ = score(method_rsm) − score(method) per (dataset, setting, seed) (HM for base2new,
    accuracy for xd); one row per (pair, dataset, setting) and an Average row per (pair, setting):
    n pairs, mean_delta, ci_low, ci_high (percentile bootstrap, see `bootstrap_ci`)."""
    metric = "hm" if task == "base2new" else "accuracy"
    s = scores[scores["task"] == task]
    key = ["dataset", "setting", "seed"]
    rows = []
    for baseline, treated in pairs:
        a = s[s["method"] == baseline][key + [metric]]
        b = s[s["method"] == treated][key + [metric]]
        paired = a.merge(b, on=key, suffixes=("_a", "_b"))
        if paired.empty:
            continue
        paired["delta"] = paired[f"{metric}_b"] - paired[f"{metric}_a"]
        common = {"task": task, "baseline": baseline, "method": treated, "selection": selection,
                  "metric": metric}
        for (ds, setting), g in paired.groupby(["dataset", "setting"], sort=False):
            low, high = bootstrap_ci([g["delta"].to_numpy()], n_boot, rng_seed)
            rows.append({**common, "dataset": ds, "setting": setting, "n": len(g), "n_datasets": 1,
                         "mean_delta": g["delta"].mean(), "ci_low": low, "ci_high": high})
        for setting, g in paired.groupby("setting", sort=False):
            groups = [d["delta"].to_numpy() for _, d in g.groupby("dataset", sort=True)]
            low, high = bootstrap_ci(groups, n_boot, rng_seed)
            rows.append({**common, "dataset": reference.AVERAGE, "setting": setting, "n": len(g),
                         "n_datasets": len(groups), "mean_delta": g["delta"].mean(),
                         "ci_low": low, "ci_high": high})
    df = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    if df.empty:
        return df
    keys = df.apply(lambda r: (method_order(r["baseline"]), dataset_key(r["dataset"]),
                               setting_key(r["setting"])), axis=1)
    return df.loc[sorted(df.index, key=lambda i: keys[i])].reset_index(drop=True)

