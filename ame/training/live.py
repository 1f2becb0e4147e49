"""Live training curves through DVCLive, so `dvc plots show` draws them while a run trains and
`dvc plots diff` compares runs.

Each distillation run logs, after every epoch, the per-step means of the KD loss, H(M) (RSM runs)
and the total loss, the learning rate and the base accuracy of the selection pass — the columns of
history.csv, which stays the run's contract. The curves live in the run's scratch folder
(`<scratch>/dvclive/`: metrics.json, plots/metrics/<name>.tsv), beside its resume state and outside
its declared outputs, because DVCLive stamps every row with the wall-clock time; a resumed run
appends to them, a run started afresh starts them afresh.
"""

from __future__ import annotations

import os
from pathlib import Path

LIVE_FOLDER = "dvclive"
# history.csv column -> EpochRecord field
_SERIES = ("kd_loss", "rsm_entropy", "total_loss", "lr", "base_acc")


class LiveCurves:
    """DVCLive's `Live` for one run: `log(row)` after each epoch (a `history_row`), `close()` at
    the end. DVCLive is told not to touch Git, DVC experiments or dvc.yaml."""

    def __init__(self, folder: str | os.PathLike, resume: bool) -> None:
        from dvclive import Live

        self.folder = Path(folder)
        self._live = Live(str(self.folder), resume=resume, report=None, save_dvc_exp=False, dvcyaml=False,
                          monitor_system=False)

    def log(self, row: dict) -> None:
        """Log one history.csv row (epoch 1-based) at step = epoch."""
        self._live.step = int(row["epoch"])
        for name in _SERIES:
            if row.get(name) not in (None, ""):
                self._live.log_metric(name, float(row[name]))
        self._live.make_summary()

    def close(self) -> None:
        self._live.end()
