"""How every `ame` command logs: one format (time, level, message) on stderr, three verbosities.

Library modules log through `logging.getLogger(__name__)` and never configure logging; the command
line does, once (`setup_logging`). Torch-free, so light steps stay light.
"""

from __future__ import annotations

import logging
import sys


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is at the time (tests and notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbosity: int = 0) -> None:
    """One log format for every job: time, level, message (messages name their run, epoch, step).
    verbosity -1: warnings and errors only (`--quiet`); 0: progress (default); 1: debug (`--verbose`)."""
    logger = logging.getLogger("ame")
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
