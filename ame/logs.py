"""How every `ame` command logs: one format (time, level, message) on stderr, three verbosities.

Library modules log through `logging.getLogger(__name__)` and never configure logging; the command
line does, once (`setup_logging`). Long loops report through `Progress`: a bar on a terminal,
periodic lines with an ETA in job logs. Torch-free, so light steps stay light.
"""

from __future__ import annotations

import logging
import sys
import time


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
    verbosity -1: warnings and errors only (`--quiet`); 0: progress (default); 1: debug (`--verbose`).

    The handler sits on the root logger, whose level stays WARNING: other libraries' warnings show
    in the same format, their INFO chatter does not, and their module-level `logging.info(...)` calls
    find a handler and so never install a second one (`logging.basicConfig`), which would print
    every `ame` message twice."""
    logging.getLogger("ame").setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Progress of a long loop of `total` steps: a tqdm bar when stderr is a terminal, otherwise
    (job logs are files) an INFO line every `every_seconds` with steps done, rate and ETA.
    Silent under `--quiet`. Use as a context manager; `update(n, text)` after each step."""

    def __init__(self, name: str, total: int, logger: logging.Logger, every_seconds: float = 60.0,
                 done: int = 0) -> None:
        self.name, self.total, self.log, self.every = name, total, logger, every_seconds
        self.done = done
        self.started = self.last = time.monotonic()
        self._first = done
        self.bar = None
        if logger.isEnabledFor(logging.INFO) and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=name, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, text: str = "") -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            return
        now = time.monotonic()
        if now - self.last < self.every or not self.log.isEnabledFor(logging.INFO):
            return
        self.last = now
        rate = (self.done - self._first) / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.log.info(f"[{self.name}] {self.done}/{self.total} steps ({100 * self.done / max(self.total, 1):.0f}%)"
                      f"{', ' + text if text else ''}, {rate:.2f} steps/s, ETA "
                      f"{_duration(eta) if eta != float('inf') else '?'}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
