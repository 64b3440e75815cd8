"""Whether a process runs, by its pid (standard library only: the keeper imports it and
starts lean)."""

from __future__ import annotations

import os
from pathlib import Path


def is_alive(pid: int | None, child: bool = False) -> bool:
    """Whether `pid` runs. A zombie does not, and is reaped when it is our child; with
    `child`, the pid is a child of ours and is reaped as soon as it has exited."""
    if not pid:
        return False
    if child:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True  # kill(0) found it; /proc says no more
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def command_line(pid: int | None) -> list[bytes] | None:
    """The command line `pid` runs (its arguments; Linux's /proc), None when it cannot be
    read (no such process, or no /proc)."""
    if not pid:
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
