"""ame.logs: one log format for every job, and progress that shows in job logs (stderr is a file)."""

import logging
import re

from ame.logs import Progress, setup_logging


def test_progress_in_a_job_log_is_a_line_with_steps_rate_and_eta(caplog):
    log = logging.getLogger("ame.test_progress")
    with caplog.at_level(logging.INFO, logger="ame.test_progress"):
        with Progress("run A", total=8, logger=log, every_seconds=0) as progress:
            for _ in range(4):
                progress.update(1, "epoch 1/2 loss 0.5")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert re.fullmatch(r"\[run A\] 4/8 steps \(50%\), epoch 1/2 loss 0\.5, [\d.]+ steps/s, ETA \d+m\d\ds", lines[-1])


def test_progress_lines_are_spaced_in_time_and_silent_under_quiet(caplog):
    log = logging.getLogger("ame.test_progress")
    with caplog.at_level(logging.INFO, logger="ame.test_progress"):
        with Progress("run B", total=100, logger=log, every_seconds=3600) as progress:
            for _ in range(100):
                progress.update()
    assert caplog.records == []  # all 100 steps within the hour: no line yet
    with caplog.at_level(logging.WARNING, logger="ame.test_progress"):
        with Progress("run C", total=3, logger=log, every_seconds=0) as progress:
            progress.update()
    assert caplog.records == []


def test_a_resumed_loop_counts_from_where_it_resumed(caplog):
    log = logging.getLogger("ame.test_progress")
    with caplog.at_level(logging.INFO, logger="ame.test_progress"):
        with Progress("run D", total=10, logger=log, every_seconds=0, done=6) as progress:
            progress.update()
    assert "[run D] 7/10 steps (70%)" in caplog.records[-1].getMessage()


def test_setup_logging_sets_the_ame_loggers_level_from_the_verbosity():
    for verbosity, level in ((-1, logging.WARNING), (0, logging.INFO), (1, logging.DEBUG)):
        setup_logging(verbosity)
        assert logging.getLogger("ame").level == level
    setup_logging(0)
    assert sum(type(h).__name__ == "_Stderr" for h in logging.getLogger().handlers) == 1  # never added twice


def test_each_message_is_printed_once_even_after_a_library_logs_through_the_root_logger():
    import subprocess
    import sys

    code = ("import logging; from ame.logs import setup_logging; setup_logging(0); "
            "logging.info('library chatter'); logging.warning('library warning'); "
            "logging.getLogger('ame.x').info('our message')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.count("our message") == 1 and "library chatter" not in err
    assert err.count("library warning") == 1 and " WARNING library warning" in err  # one format for all
