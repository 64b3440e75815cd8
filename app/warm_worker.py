"""The warm worker itself (app/warm.py explains the design; the command's side, starting
and stopping are there): it imports the libraries once, then forks one child per command,
which runs `run.py` as a cold command would and ends as one does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time

from app.warm import CHILD_ENV, IDLE_ENV, record, socket_path, state_path, write_state
from core.paths import REPO_ROOT

# What every pipeline command imports before its first step (ZenML imports the libraries
# while it compiles: its mlflow, sklearn, pandas and seldon integrations), and Evidently.
PRELOAD = (
    "zenml",
    "zenml.client",
    "zenml.zen_stores.sql_zen_store",
    "zenml.pipelines.pipeline_definition",
    "zenml.orchestrators.step_launcher",
    "zenml.integrations.registry",
    "zenml.deployers",
    "zenml.log_stores",
    "mlflow",
    "mlflow.pyfunc",
    "pandas",
    "scipy.stats",
    "sklearn",
    "sklearn.compose",
    "sklearn.datasets",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "kubernetes",
    # monitor's drift step imports Evidently inside the step (after its first step starts)
    "evidently",
    "evidently.legacy.calculations.stattests",
    "evidently.legacy.metrics",
    "evidently.metrics",
    "evidently.presets",
)
IDLE_SECONDS = float(os.environ.get(IDLE_ENV, "1800"))
# The running children: pid -> the worker's copy of its command's socket (to report a
# child that a signal ended, which cannot report itself).
_CHILDREN: dict[int, int] = {}
_ENDED = [time.monotonic()]  # when the last command ended


def preload() -> None:
    """Import the libraries, and check that nothing a command must read afresh was made."""
    import importlib
    import threading

    for name in PRELOAD:
        importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # ZenML's store models: done at the first query otherwise (no database)
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    if GlobalConfiguration._global_config is not None or Client._global_client is not None:
        raise RuntimeError("importing ZenML made its configuration: a fork would reuse it")
    if threading.active_count() != 1:
        raise RuntimeError(f"threads after the imports, unsafe to fork: {threading.enumerate()}")
    for stream in (sys.stdout, sys.stderr):  # nothing of the imports' reaches a command
        stream.flush()


def serve() -> None:
    """The worker's loop: one fork per command, until idle or told to stop."""
    import selectors

    state = record(os.getpid())
    preload()
    path = socket_path()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(8)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    write_state(state)
    _ENDED[0] = time.monotonic()  # idle from when it is ready
    _log(f"ready (pid {os.getpid()}), {len(sys.modules)} modules imported")
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    try:
        while not stopping and not idle(time.monotonic(), _ENDED[0], len(_CHILDREN)):
            if not selector.select(timeout=1.0):
                continue
            conn, _ = server.accept()
            try:
                _serve_one(server, conn)
            except Exception as exc:  # one bad request never ends the worker
                _log(f"a request failed: {exc!r}")
            finally:
                conn.close()
    finally:
        _log("stopping" if stopping else f"stopping after {IDLE_SECONDS:.0f} idle seconds")
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state_path().read_text()).get("pid") == os.getpid():
                state_path().unlink()
                path.unlink()


def idle(now: float, ended: float, running: int, limit: float = IDLE_SECONDS) -> bool:
    """Whether the worker has been idle long enough to stop: no command running, and the
    last one ended (or the worker started) `limit` seconds ago."""
    return running == 0 and now - ended >= limit


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if not pid:
                break
            cpu = usage.ru_utime + usage.ru_stime
            _log(
                f"pid {pid} ended with status {os.waitstatus_to_exitcode(status)} ({cpu:.2f} s CPU)"
            )
            fd = _CHILDREN.pop(pid, None)
            if fd is not None:
                report_end(fd, status)
            _ENDED[0] = time.monotonic()


def report_end(fd: int, status: int) -> None:
    """A child ended: if a signal ended it (it could not say so), tell its command which
    (as the negative number), so that the command ends by it too; close the worker's copy."""
    with contextlib.suppress(OSError):
        if os.WIFSIGNALED(status):
            os.write(fd, struct.pack("!q", -os.WTERMSIG(status)))
    os.close(fd)


def _serve_one(server: socket.socket, conn: socket.socket) -> None:
    conn.settimeout(10)  # a request is sent at once; never let one hold the worker
    message, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
    try:
        if len(message) != 8:
            raise ValueError("no request length")
        size = struct.unpack("!q", message)[0]
        data = b""
        while len(data) < size:
            more = conn.recv(min(1 << 20, size - len(data)))
            if not more:
                raise ValueError("the request ended early")
            data += more
        request = json.loads(data)
        if len(fds) != 3:
            raise ValueError(f"{len(fds)} file descriptors, not 3")
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # reaped once recorded
        pid = os.fork()
    except Exception:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        for fd in fds:
            os.close(fd)
        raise
    if pid == 0:  # the child: never returns
        try:
            server.close()
            for other in _CHILDREN.values():
                os.close(other)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
            conn.settimeout(None)
            _child(conn, fds, request)
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)
    _CHILDREN[pid] = os.dup(conn.fileno())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
    _log(f"pid {pid} runs {request['argv'][1:]} in {request['cwd']}")


def _log(line: str) -> None:
    """A line in the worker's log (its stderr: logs/warm.log)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(Exception):
        print(f"{stamp} zenkube warm: {line}", file=sys.stderr, flush=True)


def _child(conn: socket.socket, fds: list[int], request: dict) -> None:
    """Run the command and report its status; always ends the process (never returns to
    the worker's loop, whatever is raised)."""
    import threading

    status = 1
    finished = threading.Event()
    try:
        try:
            conn.sendall(struct.pack("!q", os.getpid()))  # the command relays signals to it
            status = _run_command(conn, fds, request, finished)
        except BaseException:  # noqa: BLE001 (report it and exit, whatever happened)
            import traceback

            traceback.print_exc()
        finished.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command is over
        with contextlib.suppress(OSError):
            conn.sendall(struct.pack("!q", status))
    finally:
        os._exit(status)


def _run_command(conn: socket.socket, fds: list[int], request: dict, finished) -> int:
    import runpy
    import threading

    os.setpgid(0, 0)  # signals for the worker's group are not the command's
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    log = os.dup(2)  # the worker's log: the output's place once the command is gone
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # As Python sets them at start: stdout line-buffered on a terminal, stderr always.
    sys.stdout.reconfigure(line_buffering=sys.stdout.isatty())
    sys.stderr.reconfigure(line_buffering=True)
    _fresh_randomness()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[CHILD_ENV] = "1"
    sys.argv = list(request["argv"])
    _forget_project_modules()
    threading.Thread(target=_interrupt_when_gone, args=(conn, finished, log), daemon=True).start()
    try:
        runpy.run_path(str(REPO_ROOT / "run.py"), run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    exit_as_python_does()
    return status


def exit_as_python_does() -> None:
    """What an interpreter's exit does before it ends (Py_FinalizeEx): wait for the
    non-daemon threads (and run concurrent.futures' exit hooks, which finish its queued
    work), then the atexit functions, then flush stdout and stderr."""
    import atexit
    import threading

    with contextlib.suppress(KeyboardInterrupt):
        threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _fresh_randomness() -> None:
    """A fork shares its parent's random state: reseed what a new process seeds itself
    (Python's `random` reseeds at fork on its own; numpy's global generator does not)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF  # as a process's exit status: sys.exit(-1) is 255, not a signal
    print(code, file=sys.stderr)
    return 1


def _forget_project_modules() -> None:
    """Drop this repository's modules (not the venv's): the command imports them afresh."""
    root = str(REPO_ROOT) + os.sep
    venv = str(REPO_ROOT / ".venv") + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root) and not path.startswith(venv):
            del sys.modules[name]


def _interrupt_when_gone(conn: socket.socket, finished, log: int) -> None:
    """The command that sent this child went away: interrupt the run, as Ctrl-C would, and
    send its output to the worker's log from now on (not onto the terminal it has left).
    (The command sends nothing after its request: the socket ends only with it.)"""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    if not finished.is_set():
        for target in (1, 2):
            os.dup2(log, target)
        os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    serve()
