"""A run folder's files (`ame.spec.layout.RUN_FILES`), as `ame distill` and `ame zeroshot` write
them: params.json, embeddings.npz, history.csv (`ame.contracts`), and the kept copy of a finished
run that lets a rerun of a grouped job restore it instead of training it again.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import torch

from ame import contracts
from ame.io import read_json, write_bytes, write_json, write_npz, write_text
from ame.spec.layout import RUN_FILES
from ame.spec.run import RunSpec


def write_params(out_dir: Path, spec: RunSpec) -> None:
    """params.json: the run's whole specification, in the clear (RunSpec.from_dict reads it back)."""
    write_json(out_dir / "params.json", spec.to_dict())


def write_history(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=contracts.HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def write_embeddings(path: Path, features: torch.Tensor, labels: torch.Tensor, classnames: list[str]) -> None:
    write_npz(path, features=features.numpy().astype(np.float32), labels=labels.numpy(),
              classnames=np.array(classnames))


# A run's files, metrics.json last: its presence marks a complete run, when written and when restored.
_RUN_FILES_METRICS_LAST = sorted(RUN_FILES, key=lambda name: name == "metrics.json")


def keep_finished(out_dir: Path, scratch_dir: Path, key: str) -> None:
    """Copy a finished run into its scratch folder, so that a rerun of the same job (whose outputs
    the engine deletes first) restores it instead of training it again."""
    kept = scratch_dir / "finished"
    for name in _RUN_FILES_METRICS_LAST:
        write_bytes(kept / name, (out_dir / name).read_bytes())
    write_json(kept / "key.json", {"key": key})  # last: marks a complete copy


def restore_finished(out_dir: Path, scratch_dir: Path, key: str) -> bool:
    """Put back a run kept by `keep_finished` under the same key; False when there is none, or when
    the kept copy lacks a file (then the run is trained again)."""
    kept = scratch_dir / "finished"
    try:
        if read_json(kept / "key.json").get("key") != key:
            return False
    except (FileNotFoundError, ValueError):
        return False
    if not all((kept / name).is_file() for name in _RUN_FILES_METRICS_LAST):
        return False
    for name in _RUN_FILES_METRICS_LAST:
        write_bytes(out_dir / name, (kept / name).read_bytes())
    return True


def drop_finished(scratch_dir: Path) -> None:
    """Remove a kept copy (pipeline-made scratch files only) once the whole job has finished."""
    shutil.rmtree(scratch_dir / "finished", ignore_errors=True)
