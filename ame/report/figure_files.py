"""Writing a matplotlib figure to files: atomically, in the format each suffix names, with no
metadata that varies (no version stamp, producer or date), so identical figures give identical
bytes. Shared by the report's figures and the ablation's, without either importing the other."""

from __future__ import annotations

import os
from pathlib import Path

DPI = 120
_METADATA = {"png": {"Software": None},
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save_figure_files(fig, paths) -> list[Path]:
    """Write `fig` (a matplotlib Figure) to each of `paths` (.png or .pdf); ValueError for another
    suffix. Returns the paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ame.io import atomic_path

    FigureCanvasAgg(fig)
    out = [Path(os.fspath(p)) for p in paths]
    for path in out:
        fmt = path.suffix.lstrip(".")
        if fmt not in _METADATA:
            raise ValueError(f"{path}: figures are written as {sorted(_METADATA)}, not {fmt!r}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
    return out
