"""What both server launchers share (runs inside the server environments)."""

from __future__ import annotations

import argparse
import os
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


def free_port() -> int:
    """A free port on the loopback address, for listeners we do not expose."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def launcher_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every launcher takes (zenkube's process module passes them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--model-name", default="classifier")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    return parser
