"""zenkube's own voice on the console: one line per step, one paragraph per error.

`quiet(log_file, echo)` routes every log record (ZenML, MLflow, warnings) and whatever
the libraries print to stderr into the log file, and echoes one line per finished
pipeline step with its time. With `--verbose` the CLI does not use it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import click

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FINISHED = re.compile(r"Step `?([\w.-]+)`? has finished in `?([^`\s]+?)`?\.?$")
FAILED = re.compile(r"Failed to run step `?([\w.-]+)`?")
STARTED = re.compile(r"Step `?([\w.-]+)`? has started")
SKIPPED = re.compile(r"zenkube skipped ([\w.-]+): (.*)$")
PROGRESS = re.compile(r"zenkube progress ([\w.-]+): (.*)$")  # long steps, every few seconds
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Spinner:
    """`  ⠙ step (4s)` redrawn in place while a step runs; only on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.enabled = self.stream.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, label: str) -> None:
        self.stop()
        if not self.enabled:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, args=(label,), daemon=True)
        self._thread.start()

    def _spin(self, label: str) -> None:
        started = time.monotonic()
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - started
            self.stream.write(f"\r  {SPINNER[frame % len(SPINNER)]} {label} ({elapsed:.0f}s)")
            self.stream.flush()
            frame += 1

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.stream.write("\r\x1b[2K")  # clear the line for the step's final line
            self.stream.flush()


class StepProgress(logging.Handler):
    """Turns ZenML's step records into one short console line each (a spinner meanwhile)."""

    def __init__(self, echo: Callable[[str], None], spinner: Spinner | None = None):
        super().__init__(logging.INFO)
        self.echo = echo
        self.spinner = spinner or Spinner()
        self.skipped: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = ANSI.sub("", record.getMessage())
        except Exception:  # a record that cannot be formatted is not ours to report
            return
        if started := STARTED.search(message):
            self.spinner.start(started.group(1))
        elif skipped := SKIPPED.search(message):
            self.skipped[skipped.group(1)] = skipped.group(2)
        elif progress := PROGRESS.search(message):
            self.spinner.stop()
            self.echo(f"    {progress.group(1)}: {progress.group(2)}")
            self.spinner.start(progress.group(1))
        elif done := FINISHED.search(message):
            self.spinner.stop()
            if done.group(1) in self.skipped:
                reason = self.skipped.pop(done.group(1)).removeprefix("skipped: ")
                self.echo(f"  – {done.group(1)} skipped: {reason}")  # reasons hold brackets
            else:
                self.echo(f"  ✓ {done.group(1)} ({done.group(2)})")
        elif failed := FAILED.search(message):
            self.spinner.stop()
            self.echo(f"  ✗ {failed.group(1)} failed")


class LogFile(io.TextIOBase):
    """The log file as library handlers and stderr write to it: terminal colours
    removed and every line stamped with its UTC time, so the file reads as a log."""

    def __init__(self, raw, clock: Callable[[], float] = time.time):
        self.raw = raw
        self.clock = clock
        self.line_start = True

    def write(self, text: str) -> int:
        parts = []
        for line in ANSI.sub("", text).splitlines(keepends=True):
            if self.line_start:
                parts.append(time.strftime("%Y-%m-%d %H:%M:%S ", time.gmtime(self.clock())))
            parts.append(line)
            self.line_start = line.endswith("\n")
        self.raw.write("".join(parts))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:  # a child process given our stderr writes to the file itself
        return self.raw.fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


_routed: list[tuple[logging.StreamHandler, object]] = []  # handlers quiet() moved
_log_stream: list[LogFile] = []  # the log file while quiet() runs


def route_library_logs() -> None:
    """Send the console handlers of the libraries imported so far into the log file
    while `quiet` runs (ZenML adds its own when it is imported, which a read-only command
    never does: so `quiet` does not import it, and the commands that do call this)."""
    if not _log_stream:
        return
    stream = _log_stream[-1]
    root = logging.getLogger()
    root.setLevel(min(root.level or logging.INFO, logging.INFO))  # ZenML's import raises it
    zenml_logger = sys.modules.get("zenml.logger")
    zenml_handler = getattr(zenml_logger, "ZenMLConsoleHandler", None)
    moved = {id(handler) for handler, _ in _routed}
    for logger in (logging.getLogger(), logging.getLogger("mlflow")):
        for handler in logger.handlers:
            if id(handler) in moved or not isinstance(handler, logging.StreamHandler):
                continue
            if (zenml_handler is not None and isinstance(handler, zenml_handler)) or getattr(
                handler, "stream", None
            ) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
                _routed.append((handler, handler.setStream(stream)))


@contextlib.contextmanager
def quiet(log_file: Path, echo: Callable[[str], None]) -> Iterator[Path]:
    """Send library logs and stderr chatter to `log_file` while the block runs."""
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        raw = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        from core.errors import ConfigError

        raise ConfigError(
            f"zenkube keeps its log in {log_file}, but cannot write there ({exc.strerror}: "
            f"{exc.filename}). If {log_file.parent} is a file, move it away (zenkube makes the "
            "folder), or point ZENKUBE_HOME at a folder you can write to; `python run.py --verbose "
            "<command>` (the option goes before the command) prints the library logs to the "
            "console instead."
        ) from None
    stream = LogFile(raw)
    _log_stream.append(stream)
    route_library_logs()
    progress = StepProgress(echo)
    root = logging.getLogger()
    level = root.level
    root.setLevel(min(level or logging.INFO, logging.INFO))  # step records are INFO
    root.addHandler(progress)
    try:
        with contextlib.redirect_stderr(stream):
            yield log_file
    finally:
        progress.spinner.stop()
        root.removeHandler(progress)
        root.setLevel(level)
        while _routed:
            handler, old = _routed.pop()
            handler.setStream(old)
        _log_stream.remove(stream)
        raw.close()


def log_traceback(exc: BaseException) -> None:
    """Append an unexpected error's traceback to the log file (stamped, like the rest):
    the console shows one paragraph, the log keeps the whole story."""
    from core.paths import log_file

    try:
        path = log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as raw:
            text = "".join(traceback.format_exception(exc))
            LogFile(raw).write(f"zenkube: unexpected error (pid {os.getpid()}):\n{text}")
    except OSError:  # no log to write to: the console said what it could
        pass


def _fail(exc: BaseException, debug: bool) -> None:
    from core.errors import user_error
    from core.paths import log_file

    if debug:
        traceback.print_exception(exc)
    known = user_error(exc)
    if known is not None:
        click.secho(f"Error: {known}", fg="red", err=True)
    else:
        log_traceback(exc)
        click.secho(f"Unexpected error: {type(exc).__name__}: {exc}", fg="red", err=True)
        if not debug:
            click.echo(f"Its traceback is in {log_file()} (or run again with --debug).", err=True)
    sys.exit(2 if known is not None else 1)


class ZenkubeGroup(click.Group):
    """Turns every command's errors into one message (the only place that does)."""

    def invoke(self, ctx: click.Context):
        from core.paths import log_file

        verbose = bool(ctx.params.get("verbose"))
        try:
            with contextlib.nullcontext() if verbose else quiet(log_file(), click.echo):
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            _interrupted()
        except BrokenPipeError as exc:
            if _stdout_closed():  # `run.py history | head`: the reader left, as with any tool
                raise  # click's main() ends quietly on EPIPE (status 1)
            _fail(exc, bool(ctx.params.get("debug")))
        except Exception as exc:
            from core.errors import interrupted

            if interrupted(exc):  # ZenML turns a Ctrl-C inside a step into an Exception
                _interrupted()
            _fail(exc, bool(ctx.params.get("debug")))


def _stdout_closed() -> bool:
    """Whether the console's own output is the pipe that broke (not a socket of ours)."""
    import select

    try:  # a pipe whose reader has gone polls as an error on its writing end
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _interrupted() -> None:
    click.echo(
        "\nzenkube: interrupted (Ctrl-C); the run stopped. A champion move that had "
        "begun was completed with its history entry; a deploy cut off before its switch "
        "left the served version serving (one cut off after it serves the new one), and "
        "a rollback that did not finish put the champion back. `python run.py history` and "
        "`python run.py serve status` show what is champion and served now; `python run.py "
        "serve repair` puts right anything a killed command left.",
        err=True,
    )
    sys.exit(130)
