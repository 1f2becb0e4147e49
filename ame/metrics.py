"""Score arithmetic shared by evaluation and the report, free of torch so that light steps stay light."""

from __future__ import annotations

import numpy as np


def harmonic_mean(base, new):
    """HM = 2·B·N / (B + N) (PromptKD's), elementwise over scalars or arrays; 0 where B + N = 0."""
    base = np.asarray(base, dtype=float)
    new = np.asarray(new, dtype=float)
    total = base + new
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total == 0, 0.0, 2 * base * new / np.where(total == 0, 1, total))
    return out if out.ndim else float(out)
