"""Gather every run's metrics.json into one table (one row per run)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ame.contracts import METRICS, validate
from ame.io import read_json

COLUMNS = [
    "dataset", "task", "setting", "method", "seed", "base", "new", "hm", "accuracy", "best_epoch",
    "last_base", "last_new", "last_hm", "last_accuracy", "last_epoch", "selection", "run_dir",
]
_KEY = ["task", "dataset", "setting", "method", "seed"]
_FLOATS = ["base", "new", "hm", "accuracy", "last_base", "last_new", "last_hm", "last_accuracy"]


def _float(x) -> float:
    return float("nan") if x is None else float(x)


def _row(path: Path) -> dict:
    m = validate(read_json(path), METRICS, where=str(path))
    last = m["last"]
    return {
        "dataset": m["dataset"], "task": m["task"], "setting": m["setting"], "method": m["method"],
        "seed": int(m["seed"]),
        "base": _float(m["base"]), "new": _float(m["new"]), "hm": _float(m["hm"]),
        "accuracy": _float(m["accuracy"]), "best_epoch": m["best_epoch"],
        "last_base": _float(last["base"]), "last_new": _float(last["new"]),
        "last_hm": _float(last["hm"]), "last_accuracy": _float(last["accuracy"]),
        "last_epoch": last["epoch"], "selection": m["selection"], "run_dir": str(path.parent),
    }


def collect_runs(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Read and validate every `metrics.json` below `runs_dir` (recursively).

    Returns one row per run with columns dataset, task, setting, method, seed, base, new, hm,
    accuracy, best_epoch, last_base, last_new, last_hm, last_accuracy, last_epoch, selection and
    run_dir (the folder holding the run's history.csv / embeddings.npz); missing scores are NaN,
    missing epochs <NA>. Rows are sorted by (task, dataset, setting, method, seed).

    Raises FileNotFoundError when the folder is missing or holds no metrics.json, ValueError
    naming the file when one is malformed, and ValueError naming both files when two runs claim
    the same (task, dataset, setting, method, seed).
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: run folder not found; run the pipeline first "
                                "(e.g. `snakemake all`) so that it holds the runs' metrics.json")
    paths = sorted(root.rglob("metrics.json"))
    if not paths:
        raise FileNotFoundError(f"{root}: no metrics.json found below this folder; run the pipeline "
                                "first (e.g. `snakemake all`)")
    df = pd.DataFrame([_row(p) for p in paths], columns=COLUMNS)
    dup = df[df.duplicated(_KEY, keep=False)]
    if len(dup):
        first = dup.iloc[0]
        clash = dup[(dup[_KEY] == first[_KEY]).all(axis=1)]["run_dir"].tolist()
        raise ValueError("two runs report the same (task, dataset, setting, method, seed) = "
                         f"{tuple(first[_KEY])}: {', '.join(clash)}; remove the stale one")
    df[_FLOATS] = df[_FLOATS].astype("float64")
    for col in ("best_epoch", "last_epoch", "seed"):
        df[col] = df[col].astype("Int64")
    return df.sort_values(_KEY, kind="stable", ignore_index=True)
