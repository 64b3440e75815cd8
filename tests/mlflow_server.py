"""A real `mlflow server` on 127.0.0.1 for tests (tracking + registry).

Started as docs/kubeflow.md starts the cluster's: artifacts go straight to the store
every model pod can read (`--default-artifact-root`, no artifact proxy), so registered
models get URIs a storage initializer reads (here a path on the shared volume that
stands in for the bucket), never `mlflow-artifacts:/…`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.server_process import ServerProcess


class MlflowServer(ServerProcess):
    name = "mlflow server"

    def __init__(self, root: Path, artifact_root: Path | None = None):
        super().__init__(root)
        self.artifact_root = artifact_root or root / "artifacts"

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
            "--default-artifact-root",
            str(self.artifact_root),
            "--no-serve-artifacts",
        ]

    def environment(self) -> dict[str, str]:
        # MLflow 3's server also starts a job runner by default: eight processes that
        # each import mlflow and poll a queue for its GenAI jobs (judges, prompt
        # optimisation), which neither zenkube nor this test submits: about 50 s of CPU at
        # the module's start, for nothing. Tracking and the registry do not use it
        # (mlflow/server/__init__.py, MLFLOW_SERVER_ENABLE_JOB_EXECUTION).
        return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
