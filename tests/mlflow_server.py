"""A real `mlflow server` on 127.0.0.1 for tests (tracking + registry + artifact proxy)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from integrations.seldon_local.process import stop_group


class MlflowServer:
    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).parent / "mlflow"
        self.log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            [
                str(mlflow),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text()[-3000:])
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            "mlflow server did not start: " + (self.root / "server.log").read_text()[-3000:]
        )

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_group(self.process.pid, timeout=10)
        self.log.close()
