"""The omega x phi ablation: does H(M) collapse, and what does omega do to Base/New/HM?

Each run's ω and φ come from its params.json (run folders are the preset's planned ablation runs,
each with metrics.json and history.csv). The table has one row per (omega, phi): Base/New/HM as
mean ± population std over seeds (HM of the means, as Table 1), H(M) of the first and last epoch
(mean over seeds, and the last epoch's std), and the seeds whose last-epoch H fell below 1 % of its
first-epoch value (a collapse of the manifold to one dominant row). The figure (ABLATION_FIGURES,
beside the table) plots HM and the last epoch's H(M) against ω, one line per φ.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ame.metrics import harmonic_mean
from ame.io import write_text
from ame.report.captions import write_caption
from ame.report.collect import collect_runs
from ame.report.figure_files import save_figure_files
from ame.spec.methods import METHODS

COLLAPSE_FRACTION = 0.01
ABLATION_FIGURES = ("ablation.png", "ablation.pdf")   # written beside the table
# One colour-blind-safe (Okabe–Ito) colour, marker and line style per φ.
PHI_STYLES = {"trained": {"color": "#009E73", "marker": "o", "linestyle": "-"},
              "frozen": {"color": "#D55E00", "marker": "s", "linestyle": "--"}}
DODGE = 0.06   # horizontal offset between the φ lines, in x-tick units, so equal values stay visible


def collect_ablation(run_dirs) -> pd.DataFrame:
    """One row per ablation run: dataset, setting, method, omega, phi, seed, base, new, hm, h_first, h_last."""
    runs = collect_runs(run_dirs)
    if runs["omega"].isna().any():
        bad = runs.loc[runs["omega"].isna(), "run_dir"].iloc[0]
        raise ValueError(f"{bad}: not an RSM run (its params.json has no rsm settings); the ablation varies ω")
    rows = []
    for r in runs.itertuples():
        history = pd.read_csv(Path(r.run_dir) / "history.csv")
        entropy = pd.to_numeric(history["rsm_entropy"], errors="coerce")
        rows.append({"dataset": r.dataset, "setting": r.setting, "method": r.method, "omega": float(r.omega),
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
                    "h_last_std": np.std(g["h_last"]),
                    "collapsed_seeds": " ".join(map(str, collapsed))})
    return pd.DataFrame(out)


def ablation_plot(table: pd.DataFrame, method: str = "PKD + RSM"):
    """The ablation figure (a matplotlib Figure): HM (a) and the last epoch's H(M) (b) against ω,
    one line per φ with ± std bars over seeds, one row of panels per (dataset, setting) of `table`
    (`ablation_table`); ω values are evenly spaced, the φ lines slightly apart."""
    from matplotlib.figure import Figure

    groups = list(table.groupby(["dataset", "setting"], sort=True))
    fig = Figure(figsize=(9.0, 3.4 * max(1, len(groups)) + 0.8), layout="constrained")
    axes = fig.subplots(max(1, len(groups)), 2, squeeze=False)
    panels = (("hm", "(a) HM vs ω", "HM (%)"), ("h_last", "(b) final-epoch H(M) vs ω", "H(M) (nats)"))
    handles = {}
    for row, ((dataset, setting), g) in zip(axes, groups):
        omegas = sorted(g["omega"].unique())
        shots = re.sub(r"^(\d+)shot$", r"\1 shots", setting)
        phis = [p for p in PHI_STYLES if p in set(g["phi"])] + sorted(set(g["phi"]) - set(PHI_STYLES))
        for ax, (col, name, ylabel) in zip(row, panels):
            for k, phi in enumerate(phis):
                sub = g[g["phi"] == phi].sort_values("omega")
                x = [omegas.index(o) + (k - (len(phis) - 1) / 2) * DODGE for o in sub["omega"]]
                style = PHI_STYLES.get(phi, {"color": "#000000", "marker": "o", "linestyle": "-"})
                handles[f"φ {phi}"] = ax.errorbar(x, sub[col], yerr=sub[f"{col}_std"], capsize=3,
                                                  markersize=5, label=f"φ {phi}", **style)
            ax.set_xticks(range(len(omegas)), [f"{o:g}" for o in omegas])
            ax.set_xlim(-0.5, len(omegas) - 0.5)
            ax.set_xlabel("ω (weight of H(M) in the loss)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{dataset}, {shots}: {name}")
            ax.grid(alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles),
                   frameon=False, title="RSM projections φ_v, φ_w")
    fig.suptitle(f"Ablation — {method}: ω × φ (mean ± std over seeds)")
    return fig


def write_ablation(run_dirs, out_csv: str | Path, out_md: str | Path, out_figures=None) -> pd.DataFrame:
    """The ablation table as CSV and Markdown, and its figure (`ablation_plot`) as `out_figures`
    (default: ABLATION_FIGURES beside `out_csv`) with the figure's caption file for the HTML
    report (`ame.report.captions`); the table."""
    runs = collect_ablation(run_dirs)
    table = ablation_table(runs)
    figures = [Path(p) for p in out_figures] if out_figures is not None else \
        [Path(out_csv).with_name(name) for name in ABLATION_FIGURES]
    write_text(out_csv, table.round(4).to_csv(index=False))
    lines = ["# Ablation — omega x phi (PKD + RSM)", "",
             "H(M) starts near log(C+B); 'collapsed' lists seeds whose last-epoch H is below 1 % of the "
             "first epoch's. Base/New/HM: mean ± population std over seeds; HM of the means.", "",
             "| Dataset | Setting | ω | φ | Base | New | HM | H first → last | collapsed seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.dataset} | {r.setting} | {r.omega:g} | {r.phi} | {r.base:.2f} ± {r.base_std:.2f} | "
                     f"{r.new:.2f} ± {r.new_std:.2f} | {r.hm:.2f} ± {r.hm_std:.2f} | "
                     f"{r.h_first:.3f} → {r.h_last:.3f} | {r.collapsed_seeds or '—'} |")
    lines += ["", f"![HM and final-epoch H(M) against ω, one line per φ (mean ± std over seeds)]({os.path.relpath(figures[0], Path(out_md).parent)})"]
    write_text(out_md, "\n".join(lines) + "\n")
    labels = {METHODS[m].label if m in METHODS else m for m in runs["method"]}
    save_figure_files(ablation_plot(table, method=" / ".join(sorted(labels))), figures)
    cells = ", ".join(f"{d} {s}" for d, s in sorted({(d, s) for d, s in zip(table["dataset"], table["setting"])}))
    seeds = ", ".join(str(int(s)) for s in sorted(runs["seed"].unique()))
    write_caption(figures[0], f"The ω × φ ablation of {' / '.join(sorted(labels))} on {cells}: HM (a) and the "
                              f"last epoch's H(M) (b) against ω ({', '.join(f'{w:g}' for w in sorted(set(table['omega'])))}), "
                              f"one line per φ (trained: RSM's projections learn; frozen: they stay at "
                              f"their initialisation), mean ± std over seeds {seeds}; from the preset's "
                              "ablation runs (each run's ω and φ read from its params.json).")
    return table
