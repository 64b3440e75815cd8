"""What both server launchers share (runs inside the server environments)."""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys

# zenkube's wire codecs (core/protocol: standard library and numpy only) are shared with
# the servers: the repository's root goes last on the path, so nothing of the server's
# own environment is shadowed (README.md here).
REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
MAX_BODY = int(os.environ.get("ZENKUBE_MAX_BODY_BYTES", str(64 * 1024 * 1024)))


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def free_port(*taken: int) -> int:
    """A free port on the loopback address for a listener, never one of `taken`.

    Picked below the kernel's ephemeral range (ip_local_port_range): a port the kernel
    hands out (bind to port 0) is free only until it binds it, and meanwhile any outgoing
    connection (a health check, a proxied request) may take it as its source port, so a
    server starting seconds later found it "already in use". Below that range only
    listeners bind, and the check binds without SO_REUSEADDR (a port in TIME_WAIT fails)."""
    low = _ephemeral_low()
    for _ in range(500) if low > 11024 else ():
        port = random.randrange(10000, low)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        return port
    while True:  # a machine whose ephemeral range leaves no room below it
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def launcher_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every launcher takes (zenkube's process module passes them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--model-name", default="classifier")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    return parser
