"""Files for `dvc metrics show` and `dvc plots show`.

- runs.json: every run's scores, nested task -> dataset -> setting -> method -> seed (DVC flattens
  nested keys, so each run shows as one metrics row).
- curves/<task>_<dataset>_<setting>_<metric>.csv: per-epoch means over seeds with one column per
  method, so each file is one plot comparing methods (x = epoch).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from ame.io import write_json, write_text

CURVE_METRICS = ("base_acc", "kd_loss", "rsm_entropy", "total_loss")


def runs_json(runs: pd.DataFrame) -> dict:
    out: dict = {}
    for r in runs.itertuples():
        scores = {k: getattr(r, k) for k in ("base", "new", "hm", "accuracy") if pd.notna(getattr(r, k))}
        out.setdefault(r.task, {}).setdefault(r.dataset, {}).setdefault(r.setting, {}) \
            .setdefault(r.method, {})[f"seed{r.seed}"] = {k: round(float(v), 2) for k, v in scores.items()}
    return out


def curves(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{file stem: epoch x method table} of per-epoch means over seeds."""
    frames = []
    for r in runs[runs["method"] != "zeroshot"].itertuples():
        history = Path(r.run_dir) / "history.csv"
        if history.is_file():
            frames.append(pd.read_csv(history).assign(task=r.task, dataset=r.dataset, setting=r.setting,
                                                      method=r.method))
    if not frames:
        return {}
    allh = pd.concat(frames, ignore_index=True)
    out = {}
    for (task, dataset, setting), g in allh.groupby(["task", "dataset", "setting"]):
        for metric in CURVE_METRICS:
            wide = g.pivot_table(index="epoch", columns="method", values=metric, aggfunc="mean")
            if wide.notna().any().any():
                out[f"{task}_{dataset}_{setting}_{metric}"] = wide.reset_index()
    return out


def write_dvc_metrics(runs: pd.DataFrame, summary: dict, metrics_dir: str | Path) -> list[Path]:
    metrics_dir = Path(metrics_dir)
    written = [metrics_dir / "summary.json", metrics_dir / "runs.json"]
    write_json(written[0], summary)
    write_json(written[1], runs_json(runs))
    for stem, table in curves(runs).items():
        buf = io.StringIO()
        table.round(6).to_csv(buf, index=False)
        path = metrics_dir / "curves" / f"{stem}.csv"
        write_text(path, buf.getvalue())
        written.append(path)
    return written
