"""The omega x phi ablation table: does H(M) collapse, and what does omega do to Base/New/HM?

Run folders: <runs_dir>/<dataset>/<setting>/omega<w>_<trained|frozen>/seed<s>/ with metrics.json and
history.csv. One row per (omega, phi): Base/New/HM as mean ± population std over seeds (HM of the
means, as Table 1), H(M) of the first and last epoch (mean over seeds), and the seeds whose last-epoch
H fell below 1 % of its first-epoch value (a collapse of the manifold to one dominant row).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ame import contracts
from ame.io import read_json, write_text
from ame.evaluate import harmonic_mean

_FOLDER = re.compile(r"^omega(?P<omega>[0-9.]+)_(?P<phi>trained|frozen)$")
COLLAPSE_FRACTION = 0.01


def collect_ablation(runs_dir: str | Path) -> pd.DataFrame:
    runs_dir = Path(runs_dir)
    rows = []
    for metrics_path in sorted(runs_dir.glob("*/*/omega*_*/seed*/metrics.json")):
        match = _FOLDER.match(metrics_path.parent.parent.name)
        if not match:
            continue
        metrics = contracts.validate(read_json(metrics_path), contracts.METRICS, where=str(metrics_path))
        history = pd.read_csv(metrics_path.parent / "history.csv")
        entropy = pd.to_numeric(history["rsm_entropy"], errors="coerce")
        rows.append({"dataset": metrics["dataset"], "setting": metrics["setting"],
                     "omega": float(match["omega"]), "phi": match["phi"], "seed": metrics["seed"],
                     "base": metrics["base"], "new": metrics["new"], "hm": metrics["hm"],
                     "h_first": float(entropy.iloc[0]), "h_last": float(entropy.iloc[-1])})
    if not rows:
        raise FileNotFoundError(f"{runs_dir}: no ablation runs found; run `snakemake ablation` first")
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


def write_ablation(runs_dir: str | Path, out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    table = ablation_table(collect_ablation(runs_dir))
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
