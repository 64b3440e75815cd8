"""A real server as its own process on 127.0.0.1 for tests: start it, wait for /health, stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from integrations.seldon_local.process import stop_group


class ServerProcess:
    name = "server"

    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def __enter__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            self.command(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"{self.name} did not start: " + (self.root / "server.log").read_text()[-3000:]
        )

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_group(self.process.pid, timeout=20)
        self.log.close()
