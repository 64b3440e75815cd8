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
- The worker serves only a command whose key (Python, the environment less the shell's
  own variables, the installed packages' folder, the umask, resource limits and nice
  value) is the worker's own; anything else runs cold, as before (`warm status` says why).
- Ctrl-C, termination and Ctrl-Z of the command are relayed to the child, and the command
  ends as its child did (by the same signal, or with its status); a command that goes
  away (even `kill -9`) interrupts its child, whose output then goes to the worker's log.
- The child waits for the command's threads and runs its atexit functions, as an
  interpreter's exit does. It has no controlling terminal (ZENKUBE_WARM=0 for a prompt).
The worker (app/warm_worker.py) stops after its idle time with no command running, or on
`run.py warm stop`.
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
from integrations.seldon_local.pids import command_line

# The commands that run a pipeline (the rest answer in about a second without ZenML).
WARM_COMMANDS = frozenset({"train", "deploy", "monitor", "loop"})
START_TIMEOUT = 300
STOP_TIMEOUT = 10.0
# What a command relays to its child in the worker (SIGTSTP: the child is stopped first).
RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCONT, signal.SIGTSTP)
# Set in a child (and so in what it starts): a command inside one never forwards again.
CHILD_ENV = "ZENKUBE_WARM_CHILD"
# ZENKUBE_WARM=0: this command runs cold even when a worker runs (benchmarks compare both).
SWITCH_ENV = "ZENKUBE_WARM"
IDLE_ENV = "ZENKUBE_WARM_IDLE_SECONDS"
# Differ between two shells (a terminal, ssh, tmux, screen, make) of one user without
# changing what an import, ZenML or MLflow reads.
VOLATILE_ENV = frozenset(
    {
        *("_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", CHILD_ENV, SWITCH_ENV, IDLE_ENV),
        *("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "GNUMAKEFLAGS"),
        *("TERM_SESSION_ID", "WINDOWID", "STY", "WINDOW", "SSH_TTY", "GPG_TTY"),
        *("XDG_SESSION_ID", "XDG_VTNR", "SECURITYSESSIONID", "ITERM_SESSION_ID"),
    }
)
VOLATILE_PREFIXES = ("SSH_", "TMUX", "KONSOLE_", "VTE_", "TERM_PROGRAM", "WT_SESSION")


def socket_path() -> Path:
    return zenkube_home() / "warm.sock"


def state_path() -> Path:
    return zenkube_home() / "warm.json"


def _volatile(name: str) -> bool:
    return name in VOLATILE_ENV or name.startswith(VOLATILE_PREFIXES)


def _process() -> dict:
    """What a fork keeps of its parent and a command inherits from its shell besides the
    environment: the umask, resource limits and nice value (a mismatch runs cold)."""
    import resource

    mask = os.umask(0o022)
    os.umask(mask)
    limits = {
        name: resource.getrlimit(getattr(resource, name))
        for name in sorted(dir(resource))
        if name.startswith("RLIMIT_")
    }
    return {"umask": mask, "rlimits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0)}


def fingerprint(environ: dict[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """What a command in the worker depends on besides the environment (the repository
    whose run.py it runs, the interpreter, the installed packages: their folder changes
    when one is installed or removed, the process's limits), and the environment that
    ZenML, MLflow and Python may read (the shell's own variables left out)."""
    environ = os.environ if environ is None else environ
    site = Path(sysconfig.get_paths()["purelib"])
    with contextlib.suppress(OSError):
        site = site.stat().st_mtime_ns
    parts = {
        "repository": str(REPO_ROOT),
        "python": [sys.executable, sys.version],
        "packages": str(site),
        "flags": [repr(sys.flags), sys.warnoptions, sorted(sys._xoptions.items())],
        **_process(),
    }
    stable = {name: value for name, value in environ.items() if not _volatile(name)}
    return json.loads(json.dumps(parts)), stable


def key(environ: dict[str, str] | None = None) -> str:
    parts, stable = fingerprint(environ)
    text = json.dumps([parts, sorted(stable.items())], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(salt: str, name: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{name}\0{value}".encode()).hexdigest()[:16]


def record(pid: int, environ: dict[str, str] | None = None) -> dict:
    """The worker's record: its pid and start time (so that a reused pid is never taken
    for it), its key, and enough to name what differs from a command's (the environment
    as salted digests: names, never values)."""
    parts, stable = fingerprint(environ)
    salt = os.urandom(16).hex()
    env = {name: _digest(salt, name, value) for name, value in stable.items()}
    return {"pid": pid, "started": _started(pid), "key": key(environ), "parts": parts,
            "salt": salt, "env": env, "socket": str(socket_path())}  # fmt: skip


def differences(state: dict, environ: dict[str, str] | None = None) -> list[str]:
    """Why this shell's commands would not run in the worker: the names that differ."""
    parts, stable = fingerprint(environ)
    names = [name for name in parts if state.get("parts", {}).get(name) != parts[name]]
    theirs, salt = state.get("env", {}), state.get("salt", "")
    mine = {name: _digest(salt, name, value) for name, value in stable.items()}
    names += sorted(f"${n}" for n in theirs.keys() | mine.keys() if theirs.get(n) != mine.get(n))
    return names


def write_state(state: dict) -> None:
    temporary = state_path().with_name(f".warm.json.{os.getpid()}")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(json.dumps(state))
    os.replace(temporary, state_path())


def wanted(argv: list[str]) -> bool:
    """Whether this command line runs a pipeline (its first word that is not an option;
    with none, the whole loop does). `--help` and `monitor history` answer without ZenML."""
    if os.environ.get(CHILD_ENV) or os.environ.get(SWITCH_ENV) == "0":
        return False
    if "--help" in argv or "-h" in argv:
        return False
    words = [arg for arg in argv[1:] if not arg.startswith("-")] or ["loop"]
    return words[0] in WARM_COMMANDS and words[:2] != ["monitor", "history"]


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks since boot; Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _is_worker(pid: int, started: int | None) -> bool:
    """Whether `pid` is a warm worker (not a process that reuses a dead worker's pid): its
    command line runs app.warm_worker and it started when the record says."""
    try:
        os.kill(pid, 0)
    except (OSError, OverflowError):
        return False
    if not Path("/proc/self").exists():  # no /proc (macOS): ask ps
        import subprocess

        found = subprocess.run(["ps", "-o", "command=", "-p", str(pid)],
                               capture_output=True, text=True, check=False)  # fmt: skip
        return "-m app.warm_worker" in found.stdout
    argv = command_line(pid) or []
    return b"app.warm_worker" in argv and started is not None and _started(pid) == started


def _record() -> dict | None:
    try:
        state = json.loads(state_path().read_text())
        int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def running() -> dict | None:
    """The worker's record (its pid and key) if it is alive; else None."""
    state = _record()
    if state is None or not _is_worker(state["pid"], state.get("started")):
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
    # Held until the handlers that relay them are set (a Ctrl-Z as the child starts).
    signal.pthread_sigmask(signal.SIG_BLOCK, RELAYED)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(socket_path()))
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
        body = request.encode()
        socket.send_fds(conn, [struct.pack("!q", len(body))], [0, 1, 2])
        conn.sendall(body)
        pid = _read_int(conn)
    except OSError:  # the worker went away meanwhile: run cold
        pid = None
    if pid is None:
        conn.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, RELAYED)
        return None
    return _wait_for(conn, pid)


def relayed() -> list[signal.Signals]:
    """The signals this command relays to its child: those it does not ignore. A command
    started with a signal ignored (`nohup`: SIGHUP; a background job of a script: SIGINT)
    keeps ignoring it, as a cold one would, and its child never gets it."""
    return [s for s in RELAYED if signal.getsignal(s) != signal.SIG_IGN]


def _wait_for(conn: socket.socket, pid: int) -> int:
    """Relay signals to the child until it ends; its exit status, or (a child ended by a
    signal, which the worker reports as its negative) end this process by that signal."""

    def relay(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def suspend(_signum, _frame):  # Ctrl-Z: stop the child, then this process; fg: resume
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # returns once continued
        signal.signal(signal.SIGTSTP, suspend)
        relay(signal.SIGCONT, None)

    wanted = relayed()
    for signum in wanted:
        signal.signal(signum, suspend if signum == signal.SIGTSTP else relay)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RELAYED)  # an ignored one stays ignored
    try:
        status = _read_int(conn)  # signals relayed meanwhile: the read resumes (PEP 475)
    except OSError:
        status = None
    conn.close()
    if status is None:  # the worker went away too: nothing says how the child ended
        print("zenkube: the command's process in the warm worker ended abruptly.", file=sys.stderr)
        return 1
    return end_as(status)


def end_as(status: int) -> int:
    """A child's status: a negative one is the signal that ended it, which ends this
    process the same way (its shell sees 128+N); otherwise the exit status to exit with."""
    if status >= 0:
        return status
    signum = -status
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    return 128 + signum  # a signal that does not end a process (none the child died by)


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
            [sys.executable, "-m", "app.warm_worker"],
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
    """Stop the worker (commands it is running finish first); whether one ran. A record
    whose process is not the worker (it died; its pid may be another's now) is removed."""
    state = _record()
    if state is None:
        echo("zenkube: no warm worker is running.")
        return False
    pid = state["pid"]
    if not _is_worker(pid, state.get("started")):
        for path in (state_path(), socket_path()):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        echo(f"zenkube: no warm worker is running (removed a stale record of pid {pid}).")
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _is_worker(pid, state.get("started")):
        time.sleep(0.1)
    if _is_worker(pid, state.get("started")):
        from core.errors import ZenkubeError

        raise ZenkubeError(
            f"The warm worker (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s of being "
            f"asked to; its log is {zenkube_home() / 'logs' / 'warm.log'}. Try again, or "
            f"end it with `kill {pid}`."
        )
    echo(f"zenkube: stopped the warm worker (pid {pid}).")
    return True


def status(echo: Callable[[str], None]) -> bool:
    """Whether a worker runs, and whether this shell's pipeline commands would run in it
    (if not, the names of what differs: never values); whether they would."""
    state = running()
    if state is None:
        echo("zenkube: no warm worker is running; pipeline commands import everything "
             "themselves (`python run.py warm start` starts one).")  # fmt: skip
        return False
    echo(f"zenkube: the warm worker is running (pid {state['pid']}).")
    if os.environ.get(SWITCH_ENV) == "0":
        echo(f"This shell's pipeline commands run on their own: {SWITCH_ENV}=0 is set.")
        return False
    if state.get("key") == key():
        echo("This shell's pipeline commands run in it.")
        return True
    names = differences(state) or ["(its record predates this version)"]
    echo("This shell's pipeline commands run on their own: what differs from the worker's "
         f"is {', '.join(names)}. Start the worker from this shell (`python run.py warm "
         "start` replaces it) or make these the same.")  # fmt: skip
    return False
