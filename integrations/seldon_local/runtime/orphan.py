"""A model server ends itself when no one looks after it any more (standard library only:
both launchers start it as a daemon thread, inside the server's environment).

A served model runs as its front (router/), the front's keeper (keeper.py) and its model
servers. The front restarts a dead server, the keeper a dead front, the front a dead
keeper; a command (`deploy`, `serve stop`) ends them all. But a server whose front and
keeper are both gone (kill -9 of both, a machine's OOM killer, a clone deleted under
them) had no one left to stop it and ran forever. So each server watches, once a second:

- its folder (`ZENKUBE_SERVER_DIR`, `<state_dir>/<service uuid>/`): removed (`make
  clean`, the clone deleted, the service deleted) -> it exits at once;
- its front and the front's keeper (`ZENKUBE_FRONT_RECORD`, the front's router.json, which
  names both pids): neither has run for `ZENKUBE_ORPHAN_GRACE` seconds (default 60) ->
  it exits. A pid counts only while /proc says it is a front or keeper of that record
  (its command line's `--record`), so a reused pid is not taken for it; a front that its
  keeper restarts (or a keeper its front restarts) keeps the server, since the other one
  runs meanwhile; a front restarted within the grace period does too.
- Until it has seen its front once (a deploy starts the server, proves it, then starts or
  switches the front), the process that started it (`ZENKUBE_SERVER_STARTER`, its pid and
  start time: a reused pid is another process) looks after it instead.

It exits by SIGTERM to its process group (its workers too), then SIGKILL to what is left
after STOP_WAIT seconds, with one line in its log saying why. Its record stays: `serve
status` reports it not running and `deploy` or `serve repair` start it again. A server
started without these variables (by hand, a benchmark), or where there is no /proc (what
runs is read there), is not watched.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

FOLDER_ENV = "ZENKUBE_SERVER_DIR"
FRONT_ENV = "ZENKUBE_FRONT_RECORD"
STARTER_ENV = "ZENKUBE_SERVER_STARTER"
GRACE_ENV = "ZENKUBE_ORPHAN_GRACE"
DEFAULT_GRACE = 60.0
STOP_WAIT = 10.0  # after SIGTERM to its group, SIGKILL to what is left


def guard_env(server_dir: str | os.PathLike, front_record: str | os.PathLike) -> dict[str, str]:
    """The environment a model server is started with so that it watches for being
    orphaned (zenkube's service.py): its folder, its front's record and its starter,
    this process."""
    return {
        FOLDER_ENV: os.path.abspath(server_dir),
        FRONT_ENV: os.path.abspath(front_record),
        STARTER_ENV: identity(os.getpid()) or "",
    }


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (the state first)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def identity(pid: int | None) -> str | None:
    """`<pid>:<start time>` (clock ticks since boot, /proc/<pid>/stat field 22): names one
    process, not whichever process gets its pid next. None: it does not run."""
    fields = _stat(pid) if pid else None
    if not fields or fields[0] in "ZX":
        return None
    return f"{pid}:{fields[19]}"


def same_process(ident: str | None) -> bool:
    """Whether the process `identity` named still runs (its pid, started then)."""
    try:
        pid = int((ident or "").split(":", 1)[0])
    except ValueError:
        return False
    return identity(pid) == ident


def runs_for(pid: object, record: str) -> bool:
    """Whether `pid` is a live front or keeper of `record`: a command line with `--record`
    and that file (relative paths taken from the process's working folder)."""
    if not isinstance(pid, int) or pid <= 0 or identity(pid) is None:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [os.fsdecode(a) for a in f.read().split(b"\0")]
    except OSError:
        return False
    wanted = os.path.realpath(record)
    for flag, value in zip(args, args[1:], strict=False):
        if flag != "--record":
            continue
        if not os.path.isabs(value):  # zenkube passes absolute paths; a hand-started front may not
            try:
                value = os.path.join(os.readlink(f"/proc/{pid}/cwd"), value)
            except OSError:
                return False
        if os.path.realpath(value) == wanted:
            return True
    return False


def front_runs(record: str) -> bool:
    """Whether the front or the keeper that the front's record names runs."""
    try:
        with open(record) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    return runs_for(data.get("pid"), record) or runs_for(data.get("keeper"), record)


class Watch:
    """Why the server should exit now (None: it is looked after), asked once a round."""

    def __init__(
        self, folder: str, record: str, starter: str, grace: float,
        clock: Callable[[], float] = time.monotonic,
    ):  # fmt: skip
        self.folder, self.record, self.starter = folder, record, starter
        self.grace, self.clock = grace, clock
        self.adopted = False  # its front was seen: the starter no longer counts
        self.alone_since: float | None = None

    def reason(self) -> str | None:
        if self.folder and not os.path.isdir(self.folder):
            return f"its folder {self.folder} was removed"
        if not self.record:
            return None
        if front_runs(self.record):
            self.adopted, self.alone_since = True, None
            return None
        if not self.adopted and same_process(self.starter):
            self.alone_since = None
            return None
        now = self.clock()
        if self.alone_since is None:
            self.alone_since = now
        if now - self.alone_since < self.grace:
            return None
        whom = "its front nor the front's keeper" if self.adopted else "its front nor its starter"
        return f"neither {whom} has run for {self.grace:g} s ({self.record})"


def grace_from_env() -> float:
    try:
        grace = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE)
    except ValueError:
        grace = DEFAULT_GRACE
    return grace if grace > 0 else DEFAULT_GRACE


def log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp} zenkube.server {text}", file=sys.stderr, flush=True)


def _group_left(pgid: int) -> list[int]:
    """Other live processes of the process group `pgid`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            fields = _stat(int(name))
            if fields and fields[0] not in "ZX" and fields[2] == str(pgid):
                found.append(int(name))
    return found


def exit_group(why: str) -> None:
    """One log line, then SIGTERM to this server's process group (it leads one: zenkube
    starts each server in a session of its own), SIGKILL to what is left after STOP_WAIT
    seconds; a server that leads no group ends only itself."""
    log(f"exits (pid {os.getpid()}, its workers too): {why}")
    pgid = os.getpgrp()
    if pgid != os.getpid():
        os.kill(os.getpid(), signal.SIGTERM)
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    while time.monotonic() < deadline and _group_left(pgid):
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


def watch_in_background(every: float = 1.0) -> threading.Thread | None:
    """Start the watch (a daemon thread) when the environment asks for it."""
    folder, record = os.environ.get(FOLDER_ENV, ""), os.environ.get(FRONT_ENV, "")
    if not (folder or record) or not os.path.isdir(f"/proc/{os.getpid()}"):
        return None  # not asked; or no /proc to tell who runs: never end a server blind
    grace = grace_from_env()
    watch = Watch(folder, record, os.environ.get(STARTER_ENV, ""), grace)
    every = min(every, grace / 4)

    def run() -> None:
        while True:
            time.sleep(every)
            why = watch.reason()
            if why:
                exit_group(why)
                return

    thread = threading.Thread(target=run, name="zenkube-orphan-watch", daemon=True)
    thread.start()
    return thread
