"""The front's keeper: a parent that does nothing but hold the public port and restart
the front (the `router` package) when it dies (standard library only: it starts and
runs lean).

    python keeper.py --port 8000 --record fronts/m/router.json -- python router ...

It binds the serving port itself and hands the listening socket to the front it starts
(`--listen-fd N --keeper PID`, as systemd's socket activation hands a socket to a
service). While the front is down the socket stays open here: the kernel queues new
connections in its backlog and the next front answers them, so a killed front costs the
requests it had in flight, not refused connections. A front that dies is started again
at once with `--restore` (it reads what it served from its record, router.json, and
resumes an active release), then with backoff (0.25 s doubling to 5 s) while it keeps
dying within 10 s of its start.

Who watches the keeper: the front. A front whose keeper is gone (kill -9) starts a new
one with `--adopt <its own pid>` and its listening socket, in the same process group, so
`ModelFront.stop` (SIGTERM to the group) still ends both. Only both dying at once needs
a command (`deploy` starts them again); the model servers they leave end themselves after
a grace period (runtime/orphan.py). A keeper whose state folder is removed (`make clean`)
stops its front and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root (run as a script)
from integrations.seldon_local.pids import is_alive  # noqa: E402

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
QUICK_DEATH = 10.0  # a front that dies sooner than this after its start backs off


def listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    return sock


def log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp} zenkube.keeper {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="bind this port (a new front)")
    parser.add_argument("--listen-fd", type=int, help="or keep this listening socket")
    parser.add_argument("--adopt", type=int, help="a running front to watch (not a child)")
    parser.add_argument("--record", type=Path, required=True, help="the front's router.json")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the front's command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sock = socket.socket(fileno=args.listen_fd) if args.listen_fd else listener(args.port)
    fd = sock.fileno()
    stopping = []

    def stop(signum, frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def launch(restore: bool) -> int:
        extra = ["--listen-fd", str(fd), "--keeper", str(os.getpid())]
        child = subprocess.Popen(
            [*command, *extra, *(["--restore"] if restore else [])],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
        )
        return child.pid

    front, child = (args.adopt, False) if args.adopt else (launch(False), True)
    started, failures = time.monotonic(), 0
    log(f"keeps the front on fd {fd} (front pid {front}{', adopted' if args.adopt else ''})")
    while not stopping:
        time.sleep(0.1)
        if not args.record.parent.exists():  # the state folder was removed: nothing to keep
            log("the front's folder is gone: stopping it")
            break
        if is_alive(front, child):
            continue
        if stopping:
            break
        failures = failures + 1 if time.monotonic() - started < QUICK_DEATH else 0
        delay = min(5.0, 0.25 * 2 ** (failures - 1)) if failures else 0.0
        log(f"the front (pid {front}) died; starting it again in {delay:g} s")
        time.sleep(delay)
        if stopping:
            break
        front, child, started = launch(True), True, time.monotonic()
    try:  # our stop is the front's: it writes what it buffered and ends
        os.kill(front, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_alive(front, child):
        time.sleep(0.05)
    log("stopped")


if __name__ == "__main__":
    main()
