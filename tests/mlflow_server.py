"""A real `mlflow server` on 127.0.0.1 for tests (tracking + registry + artifact proxy)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.server_process import ServerProcess


class MlflowServer(ServerProcess):
    name = "mlflow server"

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "mlflow"),
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
        ]
