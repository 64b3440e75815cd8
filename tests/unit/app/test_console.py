"""One line per step, a spinner only on a terminal."""

from __future__ import annotations

import io
import logging
import time

from app.console import Spinner, StepProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("zenml", logging.INFO, __file__, 1, message, None, None)


def test_a_running_step_spins_on_a_terminal_and_leaves_one_line():
    terminal, lines = Terminal(), []
    progress = StepProgress(lines.append, Spinner(terminal))
    progress.emit(record("Step \x1b[38;5;105mdeploy_champion\x1b[37m has started."))
    time.sleep(0.35)
    progress.emit(record("Step deploy_champion has finished in 8.449s."))
    drawn = terminal.getvalue()
    assert "⠋ deploy_champion (0s)" in drawn and drawn.endswith("\r\x1b[2K")
    assert lines == ["  ✓ deploy_champion (8.449s)"]


def test_no_spinner_when_the_output_is_not_a_terminal():
    pipe, lines = io.StringIO(), []
    progress = StepProgress(lines.append, Spinner(pipe))
    progress.emit(record("Step train_model has started."))
    time.sleep(0.25)
    progress.emit(record("Failed to run step `train_model`."))
    assert pipe.getvalue() == "" and lines == ["  ✗ train_model failed"]


def test_a_skipped_step_says_why_instead_of_a_tick():
    lines = []
    progress = StepProgress(lines.append, Spinner(io.StringIO()))
    progress.emit(record("Step split_data has started."))
    progress.emit(record("zenkube skipped split_data: skipped: no retraining needed"))
    progress.emit(record("Step split_data has finished in 0.1s."))
    progress.emit(record("Step train_model has finished in 0.2s."))
    assert lines == ["  – split_data skipped: no retraining needed", "  ✓ train_model (0.2s)"]


def test_ctrl_c_says_what_it_left_and_exits_130():
    import click
    from click.testing import CliRunner

    from app.console import ZenkubeGroup

    @click.group(cls=ZenkubeGroup)
    @click.option("--verbose", is_flag=True)
    def cli(verbose):
        pass

    @cli.command()
    def train():
        raise KeyboardInterrupt

    result = CliRunner().invoke(cli, ["--verbose", "train"])
    assert result.exit_code == 130
    assert "interrupted (Ctrl-C)" in result.output and "Aborted!" not in result.output


def test_the_log_file_has_no_terminal_colours_and_a_time_on_every_line():
    from app.console import LogFile

    raw = io.StringIO()
    log = LogFile(raw, clock=lambda: 0.0)
    log.write("\x1b[33mWARNING\x1b[0m first line\nsecond ")
    log.write("line continued\n")
    assert raw.getvalue() == (
        "1970-01-01 00:00:00 WARNING first line\n1970-01-01 00:00:00 second line continued\n"
    )
