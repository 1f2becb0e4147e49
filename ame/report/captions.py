"""Caption files of the HTML report (`snakemake --report`).

The report rule writes, next to every artefact it marks for the HTML report, `<stem>.caption.rst`:
what the artefact shows, from which runs and with which settings (read from the runs' params.json
when the report is built, not from the preset). Snakemake reads these files when it assembles the
HTML, so each result carries its own caption.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ame.io import write_text

SUFFIX = ".caption.rst"


def caption_path(artefact: str | os.PathLike) -> Path:
    """`figures/fscore_Digits.png` -> `figures/fscore_Digits.caption.rst` (one per stem)."""
    p = Path(artefact)
    return p.with_name(p.name.split(".")[0] + SUFFIX)


def rst_text(text: str) -> str:
    """`text` as one reStructuredText paragraph that Snakemake's Jinja pass leaves alone."""
    escaped = re.sub(r"([\\`*_|\[\]<>])", r"\\\1", " ".join(text.split()))
    return "{% raw %}" + escaped + "{% endraw %}\n"


def write_caption(artefact: str | os.PathLike, text: str) -> Path:
    """Write the caption file of `artefact` (atomically); returns its path."""
    path = caption_path(artefact)
    write_text(path, rst_text(text))
    return path
