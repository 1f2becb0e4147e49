"""Gather the runs a preset plans into one table (one row per run), read through their params.json."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ame.contracts import EVALUATION, METRICS, validate
from ame.io import read_json
from ame.spec.run import RunSpec

COLUMNS = [
    "dataset", "task", "setting", "method", "seed", "base", "new", "hm", "accuracy", "best_epoch",
    "last_base", "last_new", "last_hm", "last_accuracy", "last_epoch", "selection", "run_dir",
    # The settings that produced the run, from its params.json (NaN/None where the method has none).
    "variant", "omega", "rsm_trainable", "rsm_rank", "kd_weight", "epochs", "lr", "optimizer", "batch_size",
    "prompt_depth",
]
_KEY = ["task", "dataset", "setting", "method", "seed"]
_FLOATS = ["base", "new", "hm", "accuracy", "last_base", "last_new", "last_hm", "last_accuracy"]


def _float(x) -> float:
    return float("nan") if x is None else float(x)


def _settings(spec: RunSpec) -> dict:
    return {
        "variant": spec.variant,
        "omega": spec.rsm.omega if spec.rsm else float("nan"),
        "rsm_trainable": spec.rsm.trainable if spec.rsm else None,
        "rsm_rank": spec.rsm.rank if spec.rsm else None,
        "kd_weight": spec.kd.weight if spec.kd else float("nan"),
        "epochs": spec.optim.epochs if spec.optim else None,
        "lr": spec.optim.lr if spec.optim else float("nan"),
        "optimizer": spec.optim.name if spec.optim else None,
        "batch_size": spec.optim.batch_size if spec.optim else None,
        "prompt_depth": spec.prompts.depth if spec.prompts else None,
    }


def read_run(run_dir: str | os.PathLike) -> tuple[RunSpec, dict]:
    """(specification, metrics) of one finished run; errors name the file and what to do."""
    run_dir = Path(run_dir)
    spec = RunSpec.from_dict(read_json(run_dir / "params.json"), where=str(run_dir / "params.json"))
    path = run_dir / "metrics.json"
    m = validate(read_json(path), METRICS, where=str(path))
    for key in ("task", "dataset", "setting", "method", "seed"):
        if m[key] != getattr(spec, key):
            raise ValueError(f"{path}: {key} {m[key]!r} disagrees with params.json's {getattr(spec, key)!r}; the "
                             "run folder holds files of two runs: delete it and rerun")
    return spec, m


def _evaluated_accuracy(run_dir: Path, m: dict) -> float:
    """A trained cross-dataset run's accuracy as `ame evaluate` measured it from the saved student
    (evaluation.json, the pipeline's evaluate rule), checked against the run's own score; the run's
    own score where no evaluation exists (runs outside the pipeline)."""
    path = run_dir / "evaluation.json"
    if m["task"] != "xd" or m["best_epoch"] is None or not path.is_file():
        return _float(m["accuracy"])
    evaluation = validate(read_json(path), EVALUATION, where=str(path))
    if evaluation["classes"] != "all" or abs(evaluation["top1"] - m["accuracy"]) > 1e-3:
        raise ValueError(f"{path}: top-1 {evaluation['top1']:.4f} on {evaluation['classes']} classes, but the run "
                         f"scored {m['accuracy']:.4f} on all: a stale evaluation; delete it and rerun")
    return float(evaluation["top1"])


def _row(run_dir: Path) -> dict:
    spec, m = read_run(run_dir)
    last = m["last"]
    return {
        "dataset": m["dataset"], "task": m["task"], "setting": m["setting"], "method": m["method"],
        "seed": int(m["seed"]),
        "base": _float(m["base"]), "new": _float(m["new"]), "hm": _float(m["hm"]),
        "accuracy": _evaluated_accuracy(run_dir, m), "best_epoch": m["best_epoch"],
        "last_base": _float(last["base"]), "last_new": _float(last["new"]),
        "last_hm": _float(last["hm"]), "last_accuracy": _float(last["accuracy"]),
        "last_epoch": last["epoch"], "selection": m["selection"], "run_dir": str(run_dir),
        **_settings(spec),
    }


def collect_runs(run_dirs) -> pd.DataFrame:
    """Read and validate the runs in `run_dirs` (the folders the current preset plans).

    Returns one row per run with columns dataset, task, setting, method, seed, base, new, hm,
    accuracy, best_epoch, last_base, last_new, last_hm, last_accuracy, last_epoch, selection,
    run_dir and the run's settings (variant, omega, rsm_trainable, rsm_rank, kd_weight, epochs,
    lr, optimizer, batch_size, prompt_depth; from params.json); missing scores are NaN, missing
    epochs <NA>. Rows are sorted by (task, dataset, setting, method, seed).

    Raises ValueError when no run is given, FileNotFoundError naming a run's missing file,
    ValueError naming the file when one is malformed or params.json and metrics.json disagree,
    and ValueError naming both folders when two runs claim the same (task, dataset, setting,
    method, seed).
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("no runs to report: the preset plans none")
    df = pd.DataFrame([_row(d) for d in run_dirs], columns=COLUMNS)
    dup = df[df.duplicated(_KEY + ["variant"], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        clash = dup[(dup[_KEY + ["variant"]] == first[_KEY + ["variant"]]).all(axis=1)]["run_dir"].tolist()
        key = tuple(int(v) if k == "seed" else v for k, v in zip(_KEY + ["variant"], first[_KEY + ["variant"]]))
        raise ValueError("two runs report the same (task, dataset, setting, method, seed, variant) = "
                         f"{key}: {', '.join(clash)}")
    df[_FLOATS + ["omega", "kd_weight", "lr"]] = df[_FLOATS + ["omega", "kd_weight", "lr"]].astype("float64")
    for col in ("best_epoch", "last_epoch", "seed", "epochs", "batch_size", "prompt_depth", "rsm_rank"):
        df[col] = df[col].astype("Int64")
    return df.sort_values(_KEY, kind="stable", ignore_index=True)
