"""Rendering tables for people: CSV text rounded for reading, Markdown cells ('x.xx ± y.yy'),
captions that state the runs' settings and where they differ from the paper's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ame.report import reference
from ame.report.order import setting_key
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



def pm(mean, std) -> str:
    """'x.xx ± y.yy' (or '—' for a missing mean)."""
    if pd.isna(mean):
        return "—"
    return f"{mean:.2f} ± {std:.2f}"



def _n_seeds(row) -> str:
    return "—" if row["method"] == ZEROSHOT else str(row["n_seeds"])  # deterministic: no seeds



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
             fmt(r["mean_delta"], signed=True), f"[{fmt(r['ci_low'], True)}, {fmt(r['ci_high'], True)}]"]
            for _, r in effect.iterrows()]
    return head + md_table(["Pair", "Dataset", "Setting", "n", f"mean Δ {label}", "95 % CI"], rows) + "\n"



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
                 f"{fmt(r['paper_base'])} / {fmt(r['paper_new'])} / {fmt(r['paper_hm'])}",
                 fmt(r["delta_hm"], signed=True), fmt(r["promptkd_hm"])]
                for _, r in table.iterrows()]
        parts += [md_table(["Dataset", "Method", "Setting", "Base", "New", "HM", "Seeds",
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
                 _n_seeds(r), fmt(r["paper_accuracy"]), fmt(r["delta_accuracy"], signed=True),
                 fmt(r["promptkd_accuracy"])]
                for _, r in table.iterrows()]
        parts += [md_table(["Target", "Method", "Setting", "Accuracy", "Seeds", "Paper",
                             "Δ vs paper", "PromptKD paper"], rows), ""]
        note = _average_note(table, "target", "targets", len(reference.PAPER_XD_TARGETS))
        if note:
            parts += [note, ""]
        parts.append(_effect_md(effect, "accuracy", _unpaired_note(runs, "xd")))
    return "\n".join(parts)

