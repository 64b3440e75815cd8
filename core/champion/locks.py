"""One command per model at a time: a lock file per model under ZENKUBE_HOME/locks.

Deploy, rollback, `champion set` and the gate's promotion change a model's champion and
its endpoint; two at once would leave one's champion served by the other's server. The
lock is an advisory `flock` (the kernel drops it when the process dies, so a crash
leaves nothing to clean), re-entrant within a process (the local orchestrator runs the
deploy step inside the command that already holds it). A second command waits for the
first, saying so, and gives up with a clear sentence after `ZENKUBE_LOCK_TIMEOUT` seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from core.errors import ZenkubeError
from core.paths import zenkube_home

DEFAULT_TIMEOUT = 900.0
_held: dict[str, tuple[int, int]] = {}  # model -> (fd, depth), this process's locks
_guard = threading.Lock()


class ModelBusy(ZenkubeError):
    """Another command holds the model's lock for longer than this one waits."""


def lock_path(model_name: str):
    from core.traffic.rows import safe_name

    return zenkube_home() / "locks" / f"{safe_name(model_name)}.lock"


def holder(model_name: str) -> dict:
    """Who holds (or last held) the lock: pid, command, since; {} when unknown."""
    try:
        return json.loads(lock_path(model_name).read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def model_lock(
    model_name: str,
    command: str,
    echo: Callable[[str], None] | None = print,
    timeout: float | None = None,
) -> Iterator[None]:
    """Hold `model_name`'s lock for the block (waiting up to `timeout` seconds for it)."""
    with _guard:
        if model_name in _held:
            fd, depth = _held[model_name]
            _held[model_name] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release(model_name)
        return
    path = lock_path(model_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        # A pod's read-only image: no other command of this machine to keep out.
        logging.getLogger(__name__).warning(
            "No lock for '%s' (%s); going on without it.", model_name, exc
        )
        yield
        return
    try:
        _acquire(fd, model_name, command, echo, timeout)
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command}).encode(), 0)
    with _guard:
        _held[model_name] = (fd, 1)
    try:
        yield
    finally:
        _release(model_name)


@contextlib.contextmanager
def named_lock(name: str, doing: str, echo: Callable[[str], None] | None = print) -> Iterator[None]:
    """Hold the machine-wide lock `name` (not a model's) for the block; a second command
    waits for it, saying that another one is `doing` it."""
    path = zenkube_home() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if echo is not None:
                echo(f"zenkube: another command is {doing}; this one waits for it...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _acquire(fd: int, model_name: str, command: str, echo, timeout: float | None) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    other = holder(model_name)
    who = f"`{other.get('command', 'a command')}` (pid {other.get('pid', '?')})"
    wait = float(
        os.environ.get("ZENKUBE_LOCK_TIMEOUT", DEFAULT_TIMEOUT) if timeout is None else timeout
    )
    if echo is not None:
        echo(
            f"zenkube: {who} is changing '{model_name}'; this {command} waits for it to "
            f"finish (at most {wait:.0f}s)..."
        )
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ModelBusy(
                    f"'{model_name}' is busy: {who} has been changing its champion or endpoint "
                    f"for more than {wait:.0f}s, so this {command} did nothing. Wait for it to "
                    "finish (or stop it), then run this command again."
                ) from None
            time.sleep(0.2)


def _release(model_name: str) -> None:
    with _guard:
        fd, depth = _held[model_name]
        if depth > 1:
            _held[model_name] = (fd, depth - 1)
            return
        del _held[model_name]
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Finish the block before a Ctrl-C (SIGINT) or SIGTERM takes effect.

    For the few steps that must complete together once begun (switch the front and
    record it; move the champion and write its history): a signal that arrives meanwhile
    is raised as KeyboardInterrupt when the block ends. Only the main thread can catch
    signals; elsewhere (and for kill -9) the next command's repair is what puts it right.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda s, _f: caught.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt(f"signal {caught[0]} arrived while a change was completed")
