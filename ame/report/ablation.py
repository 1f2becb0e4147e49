"""The omega x phi ablation table: does H(M) collapse, and what does omega do to Base/New/HM?

Each run's ω and φ come from its params.json (run folders are the preset's planned ablation runs,
each with metrics.json and history.csv). One row per (omega, phi): Base/New/HM as mean ± population
std over seeds (HM of the means, as Table 1), H(M) of the first and last epoch (mean over seeds),
and the seeds whose last-epoch H fell below 1 % of its first-epoch value (a collapse of the
manifold to one dominant row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ame.metrics import harmonic_mean
from ame.io import write_text
from ame.report.collect import collect_runs

COLLAPSE_FRACTION = 0.01


def collect_ablation(run_dirs) -> pd.DataFrame:
    """One row per ablation run: dataset, setting, omega, phi, seed, base, new, hm, h_first, h_last."""
    runs = collect_runs(run_dirs)
    if runs["omega"].isna().any():
        bad = runs.loc[runs["omega"].isna(), "run_dir"].iloc[0]
        raise ValueError(f"{bad}: not an RSM run (its params.json has no rsm settings); the ablation varies ω")
    rows = []
    for r in runs.itertuples():
        history = pd.read_csv(Path(r.run_dir) / "history.csv")
        entropy = pd.to_numeric(history["rsm_entropy"], errors="coerce")
        rows.append({"dataset": r.dataset, "setting": r.setting, "omega": float(r.omega),
                     "phi": "trained" if r.rsm_trainable else "frozen", "seed": int(r.seed),
                     "base": r.base, "new": r.new, "hm": r.hm,
                     "h_first": float(entropy.iloc[0]), "h_last": float(entropy.iloc[-1])})
    return pd.DataFrame(rows)


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (dataset, setting, omega, phi), g in runs.groupby(["dataset", "setting", "omega", "phi"], sort=True):
        base, new = g["base"].mean(), g["new"].mean()
        collapsed = g[g["h_last"] < COLLAPSE_FRACTION * g["h_first"]]["seed"].tolist()
        out.append({"dataset": dataset, "setting": setting, "omega": omega, "phi": phi, "n_seeds": len(g),
                    "base": base, "base_std": np.std(g["base"]), "new": new, "new_std": np.std(g["new"]),
                    "hm": harmonic_mean(base, new), "hm_std": np.std(g["hm"]),
                    "h_first": g["h_first"].mean(), "h_last": g["h_last"].mean(),
                    "collapsed_seeds": " ".join(map(str, collapsed))})
    return pd.DataFrame(out)


def write_ablation(run_dirs, out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    table = ablation_table(collect_ablation(run_dirs))
    write_text(out_csv, table.round(4).to_csv(index=False))
    lines = ["# Ablation — omega x phi (PKD + RSM)", "",
             "H(M) starts near log(C+B); 'collapsed' lists seeds whose last-epoch H is below 1 % of the "
             "first epoch's. Base/New/HM: mean ± population std over seeds; HM of the means.", "",
             "| Dataset | Setting | ω | φ | Base | New | HM | H first → last | collapsed seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.dataset} | {r.setting} | {r.omega:g} | {r.phi} | {r.base:.2f} ± {r.base_std:.2f} | "
                     f"{r.new:.2f} ± {r.new_std:.2f} | {r.hm:.2f} ± {r.hm_std:.2f} | "
                     f"{r.h_first:.3f} → {r.h_last:.3g} | {r.collapsed_seeds or '—'} |")
    write_text(out_md, "\n".join(lines) + "\n")
    return table
