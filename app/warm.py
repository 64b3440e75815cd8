"""A warm process for the pipeline commands (issue #33): ZenML, MLflow, scikit-learn and
pandas imported once, each pipeline command run in a fork of it.

Importing those libraries is most of a pipeline command's time before its first step
(docs/performance.md §13); ZenML's own compile imports all of them (its integrations), so
no import of ours can avoid them. `run.py warm start` starts one process per ZENKUBE_HOME
that imports them and waits on a Unix socket; `train`, `deploy`, `monitor` and the loop
then send it their arguments, working folder, environment and their stdin/stdout/stderr
(SCM_RIGHTS), and it forks a child that runs `run.py` exactly as the command would. The
same design as multiprocessing's forkserver with a preload.

What keeps a child equal to a cold command:
- Only third-party modules are kept: the child drops every module of this repository and
  imports ours afresh, so an edit is seen at once. No ZenML Client, store or config is
  created in the worker (checked), so the child reads the store as a cold command does.
- The worker serves only a command whose key (Python, the environment, the installed
  packages' folder) is the worker's own; anything else runs cold, as before.
- Ctrl-C and termination of the command are forwarded to the child; a command that goes
  away (even `kill -9`) interrupts its child, as the end of a cold command ends its run.
The worker stops after IDLE_SECONDS without a command, or on `run.py warm stop`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from core.paths import REPO_ROOT, zenkube_home

# The commands that run a pipeline (the rest answer in about a second without ZenML).
WARM_COMMANDS = frozenset({"train", "deploy", "monitor", "loop"})
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
IDLE_SECONDS = float(os.environ.get("ZENKUBE_WARM_IDLE_SECONDS", "1800"))
START_TIMEOUT = 300
# Set in a child (and so in what it starts): a command inside one never forwards again.
CHILD_ENV = "ZENKUBE_WARM_CHILD"
# ZENKUBE_WARM=0: this command runs cold even when a worker runs (benchmarks compare both).
SWITCH_ENV = "ZENKUBE_WARM"
# Differ between two shells of one user without changing what an import does.
VOLATILE_ENV = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", CHILD_ENV, SWITCH_ENV})


def socket_path() -> Path:
    return zenkube_home() / "warm.sock"


def state_path() -> Path:
    return zenkube_home() / "warm.json"


def key(environ: dict[str, str] | None = None) -> str:
    """What a command in the worker depends on: the repository whose run.py it runs, the
    interpreter, the environment (ZenML, MLflow and Python read theirs when imported) and
    the installed packages (their folder changes when a package is installed or removed)."""
    environ = os.environ if environ is None else environ
    site = Path(sysconfig.get_paths()["purelib"])
    with contextlib.suppress(OSError):
        site = site.stat().st_mtime_ns
    stable = {name: value for name, value in environ.items() if name not in VOLATILE_ENV}
    flags = [repr(sys.flags), sys.warnoptions, sorted(sys._xoptions.items())]
    text = json.dumps(
        [str(REPO_ROOT), sys.executable, sys.version, str(site), flags, sorted(stable.items())]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def wanted(argv: list[str]) -> bool:
    """Whether this command line runs a pipeline (its first word that is not an option;
    with none, the whole loop does). `--help` and `monitor history` answer without ZenML."""
    if os.environ.get(CHILD_ENV) or os.environ.get(SWITCH_ENV) == "0":
        return False
    if "--help" in argv or "-h" in argv:
        return False
    words = [arg for arg in argv[1:] if not arg.startswith("-")] or ["loop"]
    return words[0] in WARM_COMMANDS and words[:2] != ["monitor", "history"]


def running() -> dict | None:
    """The worker's record (its pid and key) if one is alive; else None."""
    try:
        state = json.loads(state_path().read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


# -- the command's side -------------------------------------------------------------------
def exit_if_forwarded() -> None:
    """A pipeline command: run it in the warm worker and exit with its status, when a
    worker for this environment runs; otherwise return (the command runs here)."""
    if wanted(sys.argv):
        status = forward(sys.argv)
        if status is not None:
            sys.exit(status)


def forward(argv: list[str]) -> int | None:
    """Run this command in the warm worker; its exit status, or None when there is no
    worker for this key (the command then runs as usual)."""
    state = running()
    if state is None or state.get("key") != key():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(socket_path()))
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        body = request.encode()
        socket.send_fds(conn, [struct.pack("!q", len(body))], [0, 1, 2])
        conn.sendall(body)
        pid = _read_int(conn)
    except OSError:  # the worker went away meanwhile: run cold
        conn.close()
        return None
    if pid is None:
        conn.close()
        return None
    return _wait_for(conn, pid)


def _wait_for(conn: socket.socket, pid: int) -> int:
    def relay(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, relay)
    try:
        status = _read_int(conn)  # signals relayed meanwhile: the read resumes (PEP 475)
    except OSError:
        status = None
    conn.close()
    if status is None:  # the child ended without saying how (killed)
        print("zenkube: the command's process in the warm worker ended abruptly.", file=sys.stderr)
        return 1
    return status


def _read_int(conn: socket.socket) -> int | None:
    data = b""
    while len(data) < 8:
        chunk = conn.recv(8 - len(data))
        if not chunk:
            return None
        data += chunk
    return struct.unpack("!q", data)[0]


# -- starting and stopping ----------------------------------------------------------------
def start(echo: Callable[[str], None]) -> dict:
    """Start the worker for this environment (or say that one runs); its record."""
    import subprocess

    state = running()
    if state is not None and state.get("key") == key():
        echo(f"zenkube: the warm worker is running (pid {state['pid']}).")
        return state
    if state is not None:
        stop(echo)  # it serves another environment or another install
    if len(os.fsencode(socket_path())) > 100:
        from core.errors import ConfigError

        raise ConfigError(
            f"The warm worker's socket {socket_path()} would be longer than a Unix socket "
            "path may be; point ZENKUBE_HOME at a shorter folder."
        )
    echo("zenkube: starting the warm worker (imports ZenML, MLflow, scikit-learn once)...")
    log = zenkube_home() / "logs" / "warm.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.warm"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = running()
        if state is not None and state.get("pid") == process.pid:
            echo(f"zenkube: the warm worker is ready (pid {process.pid}); pipeline commands "
                 "run in it until `python run.py warm stop` or 30 idle minutes.")  # fmt: skip
            return state
        if process.poll() is not None:
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    from core.errors import ZenkubeError

    raise ZenkubeError(f"The warm worker did not start; its log is {log}.")


def stop(echo: Callable[[str], None]) -> bool:
    """Stop the worker (commands it is running finish first); whether one ran."""
    state = running()
    if state is None:
        echo("zenkube: no warm worker is running.")
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running() is not None:
        time.sleep(0.1)
    echo(f"zenkube: stopped the warm worker (pid {state['pid']}).")
    return True


# -- the worker ---------------------------------------------------------------------------
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

    own_key = key()
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
    _write_state({"pid": os.getpid(), "key": own_key, "socket": str(path)})
    _log(f"ready (pid {os.getpid()}), {len(sys.modules)} modules imported")
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    last = time.monotonic()
    try:
        while not stopping and time.monotonic() - last < IDLE_SECONDS:
            if not selector.select(timeout=1.0):
                continue
            conn, _ = server.accept()
            last = time.monotonic()
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


def _write_state(state: dict) -> None:
    temporary = state_path().with_name(f".warm.json.{os.getpid()}")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, state_path())


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
        pid = os.fork()
    except Exception:
        for fd in fds:
            os.close(fd)
        raise
    if pid == 0:  # the child: never returns
        try:
            server.close()
            conn.settimeout(None)
            _child(conn, fds, request)
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)
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
    import atexit
    import runpy
    import threading

    os.setpgid(0, 0)  # signals for the worker's group are not the command's
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
    threading.Thread(target=_interrupt_when_gone, args=(conn, finished), daemon=True).start()
    try:
        runpy.run_path(str(REPO_ROOT / "run.py"), run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return status


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
        return code
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


def _interrupt_when_gone(conn: socket.socket, finished) -> None:
    """The command that sent this child went away: interrupt the run, as Ctrl-C would.
    (The command sends nothing after its request: the socket ends only with it.)"""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    if not finished.is_set():
        os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    serve()
