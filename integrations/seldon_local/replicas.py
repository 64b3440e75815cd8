"""The replicas of one served version: a primary model server and its warm standbys.

A served version runs as `replicas` model-server processes of the same model copy, each
on a port of its own and in a process group of its own, as a cluster runs a Deployment
with `replicas: 2` behind its Service: the champion never depends on one process. The
server's record `server.json` names them: the primary as `pid`/`port` (the port every
other record calls the backend: router.json, the release, `serve status`), the standbys
under `standbys` ([{"pid", "port"}]). Each has its launch spec beside its log (the
primary: server.log, server.launch.json; standby i: standby<i>.log, standby<i>.launch.json),
from which the front starts it again when it dies (router/supervise.py).

Standbys start after the primary proved itself (health and a smoke prediction), one at a
time and under `nice` (STANDBY_NICE): starting one must not slow the server that answers
callers meanwhile. The front sends each request to the first ready replica, the primary
first (router/proxy.py `Front.targets`): primary + standby rather than round-robin, so a
caller is answered by the process at normal priority while it is up, the latency figures
of one server stay what they were, and the standby costs no CPU until it is needed; when
the primary dies the standby answers the next request (the request that found the dead
port is sent on to it) while the front restarts the primary.

How many: the local deployer's `replicas` setting (stacks/local.yaml, default 2);
`ZENKUBE_REPLICAS` overrides it (the test suite runs with 1 but for its fault tests).
No ZenML here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

DEFAULT_REPLICAS = 2
MAX_REPLICAS = 8
STANDBY_NICE = 10


def wanted(configured: int | None = None) -> int:
    """How many replicas a deploy starts: ZENKUBE_REPLICAS when set, else `configured`
    (the deployer's setting), else DEFAULT_REPLICAS."""
    raw = os.environ.get("ZENKUBE_REPLICAS", "").strip()
    value: object = raw or (configured if configured is not None else DEFAULT_REPLICAS)
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_REPLICAS:
        where = "ZENKUBE_REPLICAS" if raw else "the model deployer's `replicas` setting"
        raise ConfigError(
            f"{where} is {value!r}; it must be a whole number from 1 to {MAX_REPLICAS} (how "
            "many model-server processes serve the version: 2, the default, keeps one warm "
            "standby that answers at once when the other dies). Nothing was deployed."
        )
    return count


@dataclass(frozen=True)
class Replica:
    index: int  # 0: the primary
    pid: int | None
    port: int

    @property
    def log(self) -> str:
        return log_name(self.index)

    @property
    def spec(self) -> str:
        return log_name(self.index).removesuffix(".log") + ".launch.json"


def log_name(index: int) -> str:
    return "server.log" if index == 0 else f"standby{index}.log"


def of(record: dict) -> list[Replica]:
    """The replicas `server.json` names, the primary first ([] when it names none)."""
    found = []
    if isinstance(record.get("port"), int):
        found.append(Replica(0, record.get("pid"), record["port"]))
    for index, standby in enumerate(record.get("standbys") or [], 1):
        if isinstance(standby, dict) and isinstance(standby.get("port"), int):
            found.append(Replica(index, standby.get("pid"), standby["port"]))
    return found


def with_pid(record: dict, index: int, pid: int | None) -> dict:
    """`record` with replica `index`'s pid set (None: stopped)."""
    out = {**record, "standbys": [dict(s) for s in record.get("standbys") or []]}
    if index == 0:
        out["pid"] = pid
    else:
        out["standbys"][index - 1]["pid"] = pid
    if not out["standbys"]:
        out.pop("standbys")
    return out


def without_pids(record: dict) -> dict:
    """`record` with every replica stopped (what `serve stop` leaves)."""
    out = dict(record)
    for replica in of(record):
        out = with_pid(out, replica.index, None)
    return out


def pids(record: dict) -> list[int]:
    return [r.pid for r in of(record) if r.pid]


def standby_command(command: list[str], port: int) -> list[str]:
    """The primary's command for a standby on `port`, at low priority."""
    out = list(command)
    out[out.index("--port") + 1] = str(port)
    return ["nice", "-n", str(STANDBY_NICE), *out]


def start_standbys(
    folder: Path,
    command: list[str],
    env: dict[str, str],
    count: int,
    prove: Callable[[int, int, Path], None],
    free_port: Callable[[], int],
    spawn: Callable[..., int],
    stop_group: Callable[..., None],
) -> list[dict]:
    """Start `count` standbys of the server `command` starts, one after another, each
    proven by `prove(pid, port, log)` (it raises when the server is not healthy); the
    `standbys` entries of server.json. Any failure, Ctrl-C too, stops those started."""
    started: list[dict] = []
    try:
        for index in range(1, count + 1):
            port = free_port()
            log = folder / log_name(index)
            pid = spawn(standby_command(command, port), log, env)
            started.append({"pid": pid, "port": port})
            prove(pid, port, log)
    except BaseException:
        stop_all([s["pid"] for s in started], stop_group)
        raise
    return started


def stop_all(pids: list[int], stop_group: Callable[..., None], timeout: float = 15.0) -> None:
    """Stop these process groups at the same time (one slow to stop does not delay the
    others: Seldon's gRPC worker ignores SIGTERM)."""
    pids = [p for p in pids if p]
    if len(pids) <= 1:
        for pid in pids:
            stop_group(pid, timeout)
        return
    threads = [threading.Thread(target=stop_group, args=(p, timeout)) for p in pids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
