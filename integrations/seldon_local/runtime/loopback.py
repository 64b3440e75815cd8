"""What both server launchers share (runs inside the server environments)."""

from __future__ import annotations

import os
import socket

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
MAX_BODY = int(os.environ.get("ZENKUBE_MAX_BODY_BYTES", str(64 * 1024 * 1024)))


def free_port() -> int:
    """A free port on the loopback address, for listeners we do not expose."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
