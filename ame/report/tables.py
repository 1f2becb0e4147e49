"""Tables 1 (base-to-new) and 2 (cross-dataset), the paired RSM effect, and their files.

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

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ame.io import write_text
from ame.report import reference
from ame.spec.methods import ZEROSHOT, method_order, rsm_pairs

RSM_PAIRS = tuple(rsm_pairs())
SELECTIONS = ("best", "last")
N_BOOT = 10_000
BOOT_SEED = 0

TABLE1_COLUMNS = [
    "dataset", "method", "setting", "selection", "base", "base_std", "new", "new_std", "hm",
    "hm_std", "n_seeds", "n_datasets", "paper_base", "paper_new", "paper_hm", "delta_hm",
    "promptkd_base", "promptkd_new", "promptkd_hm",
]
TABLE2_COLUMNS = [
    "target", "method", "setting", "selection", "accuracy", "accuracy_std", "n_seeds", "n_datasets",
    "paper_accuracy", "delta_accuracy", "promptkd_accuracy",
]
EFFECT_COLUMNS = [
    "task", "baseline", "method", "dataset", "setting", "selection", "metric", "n", "n_datasets",
    "mean_delta", "ci_low", "ci_high",
]

_SELECTION_TEXT = {
    "best": "best — each run's selected checkpoint (the epoch with the best base accuracy, as the "
            "paper)",
    "last": "last — the last training epoch",
}


def harmonic_mean(base, new):
    """HM = 2·B·N / (B + N), elementwise; 0 where B + N = 0."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    total = base + new
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total == 0, 0.0, 2 * base * new / np.where(total == 0, 1, total))
    return out if out.ndim else float(out)


def _pstd(x) -> float:
    return float(np.std(np.asarray(x, dtype=float), ddof=0))


# ---------------------------------------------------------------------------------- ordering

def _dataset_key(name: str):
    if name == reference.AVERAGE:
        return (2, 0, name)
    if name in reference.CANONICAL_DATASETS:
        return (0, reference.CANONICAL_DATASETS.index(name), name)
    return (1, 0, name)


_method_key = method_order


def setting_key(setting: str):
    """Sort key: zeroshot, then K-shot by ascending K, then full, then anything else."""
    if setting == "zeroshot":
        return (0, 0, setting)
    m = re.fullmatch(r"(\d+)shot", setting)
    if m:
        return (1, int(m.group(1)), setting)
    if setting == "full":
        return (2, 0, setting)
    return (3, 0, setting)


def _sort(df: pd.DataFrame, dataset_col: str) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    keys = df.apply(lambda r: (_dataset_key(r[dataset_col]), _method_key(r["method"]),
                               setting_key(r["setting"])), axis=1)
    return df.loc[sorted(df.index, key=lambda i: keys[i])].reset_index(drop=True)


# ---------------------------------------------------------------------------------- selection

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


# ---------------------------------------------------------------------------------- aggregation

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


# ---------------------------------------------------------------------------------- RSM effect

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
    keys = df.apply(lambda r: (_method_key(r["baseline"]), _dataset_key(r["dataset"]),
                               setting_key(r["setting"])), axis=1)
    return df.loc[sorted(df.index, key=lambda i: keys[i])].reset_index(drop=True)


# ---------------------------------------------------------------------------------- tables

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
    return _sort(_finish(df, TABLE1_COLUMNS, selection), "dataset")


def table2(runs: pd.DataFrame, selection: str = "best") -> pd.DataFrame:
    """Table 2 (cross-dataset): one row per target × method × setting plus the Average over
    targets, accuracy ± std, paper and PromptKD-paper values (see TABLE2_COLUMNS). Unrounded;
    zero rows when there are no xd runs."""
    agg = aggregate(select_scores(runs, selection), "xd")
    df = _with_paper(agg, "xd")
    if not df.empty:
        df["delta_accuracy"] = df["accuracy"] - df["paper_accuracy"]
        df = df.rename(columns={"dataset": "target"})
    return _sort(_finish(df, TABLE2_COLUMNS, selection), "target")


def _rounded(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == "float64":
            df[c] = df[c].round(2)
    return df


def to_csv_text(df: pd.DataFrame) -> str:
    """CSV text with floats rounded to 2 decimals (NaN as an empty cell)."""
    return _rounded(df).to_csv(index=False, float_format="%.2f", lineterminator="\n")


# ---------------------------------------------------------------------------------- markdown

def _f(x, signed: bool = False) -> str:
    if x is None or pd.isna(x):
        return "—"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def pm(mean, std) -> str:
    """'x.xx ± y.yy' (or '—' for a missing mean)."""
    if pd.isna(mean):
        return "—"
    return f"{mean:.2f} ± {std:.2f}"


def _n_seeds(row) -> str:
    return "—" if row["method"] == ZEROSHOT else str(row["n_seeds"])  # deterministic: no seeds


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _seeds_text(runs: pd.DataFrame, task: str) -> str:
    trained = runs[(runs["task"] == task) & (runs["method"] != ZEROSHOT)]  # zero-shot: no seeds
    seeds = sorted(int(s) for s in trained["seed"].unique())
    return ", ".join(map(str, seeds)) if seeds else "none"


# The paper's settings a caption compares against (AME §4; PromptKD's reference scripts).
PAPER_OMEGA = 50.0
PAPER_OPTIM = {"optimizer": "sgd", "lr": 0.005, "batch_size": 8}
PAPER_KD_WEIGHT = {"FGVCAircraft": 200.0, "Flowers102": 200.0, "DTD": 200.0}  # else 1000; xd 1000


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


def _effect_md(effect: pd.DataFrame, label: str, unpaired: str = "") -> str:
    head = (f"## RSM effect (paired Δ {label} = {label}(+RSM) − {label}(baseline))\n\n"
            f"Per (dataset, setting, seed) run pair; mean Δ with a 95 % percentile-bootstrap CI "
            f"({N_BOOT} resamples, RNG seed {BOOT_SEED}) over seeds; the Average pools every "
            f"(dataset, seed) pair and resamples datasets, then seeds within each. n = number of "
            f"pairs. With few seeds (3 give only 10 distinct resample means) the interval is "
            f"narrow by construction: read it as descriptive, not as a significance test.\n\n")
    head += unpaired + ("\n" if unpaired else "")
    if effect.empty:
        return head + "No paired runs (a method together with its +RSM variant) were found.\n"
    rows = [[f"{r['baseline']} → {r['method']}", r["dataset"], r["setting"], str(r["n"]),
             _f(r["mean_delta"], signed=True), f"[{_f(r['ci_low'], True)}, {_f(r['ci_high'], True)}]"]
            for _, r in effect.iterrows()]
    return head + _md_table(["Pair", "Dataset", "Setting", "n", f"mean Δ {label}", "95 % CI"], rows) + "\n"


def _average_note(table: pd.DataFrame, col: str, what: str, n_paper: int) -> str:
    avg = table[table[col] == reference.AVERAGE]
    if avg.empty:
        return ""
    n = int(avg["n_datasets"].max())
    return (f"Average = mean over the {what} present (up to {n}) of the per-{what[:-1]} means"
            f"{', HM of those' if what == 'datasets' else ''}; its ± is the std over seeds of the "
            f"per-seed averages (seeds present for every {what[:-1]}). The paper's Average is "
            f"shown only when all its {n_paper} {what} are present.")


def table1_markdown(table: pd.DataFrame, effect: pd.DataFrame, runs: pd.DataFrame, preset: str,
                    selection: str) -> str:
    """Human-readable Table 1 with 'x.xx ± y.yy' cells, caption and RSM-effect section."""
    caption = (f"Preset `{preset}`; selection: {_SELECTION_TEXT[selection]}; seeds "
               f"{_seeds_text(runs, 'base2new')}. {settings_caption(runs, 'base2new', selection)} Cells are mean ± population std (ddof=0) over "
               f"seeds; HM is the harmonic mean of the mean Base and mean New (its ± is the std of "
               f"the per-seed HMs). Paper = AME paper Table 1 (pkd → PromptKD, pkd_rsm → PKD + RSM, "
               f"zeroshot → CLIP); PromptKD paper = its own full-set student (pkd full rows only).")
    parts = ["# Table 1 — base-to-new generalisation", "", caption, ""]
    note = _average_note(table, "dataset", "datasets", len(reference.PAPER_B2N_DATASETS))
    if table.empty:
        parts += ["No base-to-new runs were found.", ""]
    else:
        rows = [[r["dataset"], r["method"], r["setting"], pm(r["base"], r["base_std"]),
                 pm(r["new"], r["new_std"]), pm(r["hm"], r["hm_std"]), _n_seeds(r),
                 "—" if pd.isna(r["paper_hm"]) else
                 f"{_f(r['paper_base'])} / {_f(r['paper_new'])} / {_f(r['paper_hm'])}",
                 _f(r["delta_hm"], signed=True), _f(r["promptkd_hm"])]
                for _, r in table.iterrows()]
        parts += [_md_table(["Dataset", "Method", "Setting", "Base", "New", "HM", "Seeds",
                             "Paper B / N / HM", "Δ HM vs paper", "PromptKD paper HM"], rows), ""]
        if note:
            parts += [note, ""]
    parts.append(_effect_md(effect, "HM", _unpaired_note(runs, "base2new")))
    return "\n".join(parts)


def table2_markdown(table: pd.DataFrame, effect: pd.DataFrame, runs: pd.DataFrame, preset: str,
                    selection: str) -> str:
    """Human-readable Table 2 (cross-dataset) with caption, note when empty, RSM-effect section."""
    caption = (f"Preset `{preset}`; selection: {_SELECTION_TEXT[selection]}; seeds "
               f"{_seeds_text(runs, 'xd')}. {settings_caption(runs, 'xd', selection)} Cells are accuracy mean ± population std (ddof=0) over "
               f"seeds. Paper = AME paper Table 2 (its CLIP row is internally inconsistent as "
               f"published); PromptKD paper = its own student (pkd full rows only).")
    parts = ["# Table 2 — cross-dataset transfer", "", caption, ""]
    if table.empty:
        parts += ["No cross-dataset (xd) runs were found: the pipeline ran without the "
                  "cross-dataset task, so this table has no rows.", ""]
    else:
        rows = [[r["target"], r["method"], r["setting"], pm(r["accuracy"], r["accuracy_std"]),
                 _n_seeds(r), _f(r["paper_accuracy"]), _f(r["delta_accuracy"], signed=True),
                 _f(r["promptkd_accuracy"])]
                for _, r in table.iterrows()]
        parts += [_md_table(["Target", "Method", "Setting", "Accuracy", "Seeds", "Paper",
                             "Δ vs paper", "PromptKD paper"], rows), ""]
        note = _average_note(table, "target", "targets", len(reference.PAPER_XD_TARGETS))
        if note:
            parts += [note, ""]
        parts.append(_effect_md(effect, "accuracy", _unpaired_note(runs, "xd")))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- files

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


def write_tables(runs: pd.DataFrame, tables_dir: str | os.PathLike, preset: str,
                 selection: str = "best") -> dict:
    """Write table1.csv/.md, table2.csv/.md and rsm_effect.csv (both tasks) into `tables_dir`.

    Returns {"table1": DataFrame, "table2": DataFrame, "effect": DataFrame, "paths": [Path, ...]}.
    """
    out = Path(tables_dir)
    scores = select_scores(runs, selection)
    t1, t2 = table1(runs, selection), table2(runs, selection)
    e1 = rsm_effect(scores, "base2new", selection)
    e2 = rsm_effect(scores, "xd", selection)
    effect = pd.concat([e1, e2], ignore_index=True) if len(e2) else e1
    files = {
        "table1.csv": to_csv_text(t1),
        "table1.md": table1_markdown(t1, e1, runs, preset, selection),
        "table2.csv": to_csv_text(t2),
        "table2.md": table2_markdown(t2, e2, runs, preset, selection),
        "rsm_effect.csv": to_csv_text(effect),
    }
    paths = []
    for name, text in files.items():
        write_text(out / name, text)
        paths.append(out / name)
    return {"table1": t1, "table2": t2, "effect": effect, "paths": paths}
