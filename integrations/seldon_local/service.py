"""The ZenML service behind a local Seldon deployment: one supervised server process."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Generator
from pathlib import Path

from pydantic import Field
from zenml.enums import ServiceState
from zenml.integrations.seldon.seldon_client import (
    SeldonDeploymentPredictorParameter,
    SeldonResourceRequirements,
)
from zenml.integrations.seldon.services.seldon_deployment import SeldonDeploymentConfig
from zenml.logger import get_logger
from zenml.services.service import BaseDeploymentService
from zenml.services.service_status import ServiceStatus

from core.protocol import DEFAULT_PROTOCOL
from integrations.mlflow.registry import PICKLE_ENV
from integrations.seldon_local import process, replicas
from integrations.seldon_local.environments import runtime_python
from integrations.seldon_local.process import tree_digest
from integrations.seldon_local.runtime import orphan
from integrations.seldon_local.server_files import ServerFiles
from integrations.zenml_adapters.service_records import model_server_type

logger = get_logger(__name__)


def input_columns(model_dir: Path) -> list[str]:
    """The model's input column names, from its MLflow signature."""
    import yaml

    try:
        meta = yaml.safe_load((Path(model_dir) / "MLmodel").read_text())
        return [c["name"] for c in json.loads(meta["signature"]["inputs"])]
    except (OSError, KeyError, TypeError, ValueError):
        return []


def input_task(model_dir: Path) -> str:
    """What the model predicts ("classification" or "regression"), as recorded with it at
    registration (integrations/mlflow/registry.py `SCHEMA_KEY`); "" when not recorded."""
    import yaml

    try:
        meta = yaml.safe_load((Path(model_dir) / "MLmodel").read_text())
        task = str(((meta.get("metadata") or {}).get("zenkube_input_schema") or {}).get("task"))
    except (OSError, AttributeError, TypeError, ValueError):
        return ""
    return task if task in ("classification", "regression") else ""


class SeldonLocalServiceConfig(SeldonDeploymentConfig):
    """A `SeldonDeploymentConfig` plus what a local process needs.

    Attributes:
        protocol: `seldon` (Seldon Core v1 REST, as ZenML's seldon deployer calls) or `v2`.
        port: requested port; None keeps the previous deployment's port or picks a free one.
        workers: server worker processes.
        replicas: (SeldonDeploymentConfig's, as on a cluster) model-server processes of
            this version (integrations/seldon_local/replicas.py): the primary and
            `replicas - 1` warm standbys.
        state_dir: folder for this deployment's model copy, log and process record.
        start_timeout: seconds allowed to become healthy.
        traffic_dir: where the model's front records served requests and feedback as
            Parquet (core/traffic/rows.py); empty: not recorded.
        traffic_max_mb: cap of that folder; the oldest files go first.
    """

    implementation: str = "MLFLOW_SERVER"
    parameters: list[SeldonDeploymentPredictorParameter] | None = None
    resources: SeldonResourceRequirements | None = None
    secret_name: str | None = None
    protocol: str = DEFAULT_PROTOCOL
    port: int | None = None
    workers: int = 2
    state_dir: str = ""
    start_timeout: float = 120.0
    traffic_dir: str = ""
    traffic_max_mb: int = 512


class SeldonLocalServiceStatus(ServiceStatus):
    """Where the server runs (also recorded in `server.json` in its folder).

    Attributes:
        port: the port clients call: the model's front (integrations/seldon_local/front.py).
        pid: the model server's process group leader (it listens on its own backend port).
    """

    port: int | None = None
    pid: int | None = None


class SeldonLocalService(ServerFiles, BaseDeploymentService):
    """A Seldon (or V2) model server on 127.0.0.1 that outlives the pipeline run."""

    SERVICE_TYPE = model_server_type(
        "seldon-local", "seldon_local", "Seldon Core serving runtime as a local process"
    )

    config: SeldonLocalServiceConfig
    status: SeldonLocalServiceStatus = Field(default_factory=SeldonLocalServiceStatus)

    # -- where things are (the folder's files: server_files.py) --------------------------
    @property
    def model_dir(self) -> Path:
        return self.workdir / "model"

    @property
    def port(self) -> int | None:
        """The stable port clients call (the model's front)."""
        record = self._record()
        return record.get("public_port") or record.get("port") or self.status.port

    @property
    def pid(self) -> int | None:
        return self._record().get("pid") or self.status.pid

    @property
    def served_labels(self) -> dict[str, str]:
        """What the model's front is told about this server: its metrics' labels and the
        model's input columns (to read back requests sent without names)."""
        return {
            "model": self.config.model_name,
            "version": str(self.config.model_version),
            "protocol": self.config.protocol,
            "columns": json.dumps(input_columns(self.model_dir)),
        }

    @property
    def traffic_args(self) -> dict[str, str]:
        """Where the front records served traffic; empty when recording is off."""
        if not self.config.traffic_dir:
            return {}
        return {
            "traffic-dir": self.config.traffic_dir,
            "traffic-max-mb": str(self.config.traffic_max_mb),
        }

    def set_public_port(self, port: int, note: str = "") -> None:
        data = self._record()
        data["public_port"] = port
        data["port_note"] = note
        (self.workdir / "server.json").write_text(json.dumps(data))
        self.status.port = port

    @property
    def prediction_url(self) -> str | None:
        port = self.port
        return (
            self.protocol.url(port, self.served_name, self.protocol.predict_path) if port else None
        )

    @property
    def healthcheck_url(self) -> str | None:
        port = self.port
        return (
            self.protocol.url(port, self.served_name, self.protocol.health_path) if port else None
        )

    # -- lifecycle -------------------------------------------------------------------
    @property
    def digest_file(self) -> Path:
        return self.workdir / "model.sha256"

    def stage_model(self) -> None:
        """Copy the model next to the server, as Seldon's storage initializer does, and
        verify the copy before every start: its digest is recorded when it is fetched, and
        a copy that no longer matches (a file deleted or changed, a fetch cut off) is
        removed and fetched again."""
        if self.model_dir.exists():
            recorded = self.digest_file.read_text().strip() if self.digest_file.exists() else ""
            if recorded and tree_digest(self.model_dir) == recorded:
                return
            logger.warning(
                "The served copy of %s v%s in %s does not match its digest: fetching it again.",
                self.config.model_name,
                self.config.model_version,
                self.model_dir,
            )
            shutil.rmtree(self.model_dir)
        import mlflow.artifacts

        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.workdir / "model.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=self.config.model_uri, dst_path=str(tmp)
        )
        digest = tree_digest(Path(local))
        Path(local).rename(self.model_dir)
        self.digest_file.write_text(digest + "\n")
        shutil.rmtree(tmp, ignore_errors=True)

    def start_on(self, port: int, echo=print) -> None:
        """Start the server on `port`; raise `ServerStartError` unless healthy and answering."""
        python = runtime_python(self.config.protocol, echo=echo)
        self.stage_model()
        command = self.protocol.command(
            python, self.model_dir, self.served_name, port, self.config.workers
        )
        # it exits by itself once its front and keeper are gone (runtime/orphan.py)
        guard = orphan.guard_env(self.workdir, self.front.record_file)
        env = {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST, **guard}
        pid = process.spawn(command, self.log_file, env)
        try:
            self.prove_server(pid, port, self.log_file)
            # its warm standbys, one at a time, at low priority (replicas.py)
            standbys = replicas.start_standbys(
                self.workdir, command, env, self.config.replicas - 1, self.prove_server,
                process.free_port, process.spawn, process.stop_group,
            )  # fmt: skip
        except BaseException:  # Ctrl-C while it starts too: no server is left behind
            process.stop_group(pid)
            raise
        record = {"pid": pid, "port": port, "protocol": self.config.protocol}
        (self.workdir / "server.json").write_text(
            json.dumps({**record, "standbys": standbys} if standbys else record)
        )
        self.status.port, self.status.pid = port, pid
        self.status.update_state(ServiceState.ACTIVE)

    def prove_server(self, pid: int, port: int, log_file: Path) -> None:
        """Healthy within the start timeout and a smoke prediction answered, or raise."""
        health = self.protocol.url(port, self.served_name, self.protocol.health_path)
        process.wait_healthy(pid, health, log_file, self.config.start_timeout)
        process.smoke_test(self.protocol, port, self.served_name, self.model_dir)

    def provision(self) -> None:
        """(Re)start this server behind the model's front, on the port clients know."""
        if self.is_running:
            return
        # A server whose main process was killed can leave workers in its group: end them.
        self.stop_processes()
        wanted = self.port or self.config.port
        backend = process.free_port()
        self.start_on(backend)
        front = self.front
        note = ""
        if front.status() is not None:
            front.switch(backend, drain=[], served=self.served_labels, traffic=self.traffic_args)
            public = front.port
        else:
            public = wanted if wanted and process.port_is_free(wanted) else process.free_port()
            if wanted and public != wanted:
                note = f"port {wanted} was taken: the endpoint moved to {public}"
            front.start(public, backend, served=self.served_labels, traffic=self.traffic_args)
        self.set_public_port(public, note)

    def deprovision(self, force: bool = False) -> None:
        """Stop this server; the front too when it was forwarding to this server."""
        front = self.front
        status = front.status()
        if status is None or status.get("backend") == self.backend_port:
            front.stop()
        self.stop_server()

    def stop_processes(self) -> None:
        """Stop every replica's process group (at the same time)."""
        replicas.stop_all(replicas.pids(self._record()) or [self.pid], process.stop_group)

    def stop_server(self) -> None:
        record = self.workdir / "server.json"
        data = self._record()
        if record.exists():  # first: the front restarts no replica that is being stopped
            record.write_text(json.dumps(replicas.without_pids(data)))
        replicas.stop_all(replicas.pids(data) or [self.status.pid], process.stop_group)
        self.status.pid = None

    def check_status(self) -> tuple[ServiceState, str]:
        state, why = process.server_state(
            self.pid, self.backend_port, self.front, self.protocol, self.served_name,
            self.config.model_name, self.standbys,
        )  # fmt: skip
        return ServiceState(state), why

    def get_logs(self, follow: bool = False, tail: int | None = None) -> Generator[str, bool, None]:
        if not self.log_file.exists():
            return
        lines = self.log_file.read_text(errors="replace").splitlines()
        yield from (lines[-tail:] if tail else lines)

    def keep_log(self, keep: int = 10) -> Path | None:
        """Move this server's log out of its folder (before the folder goes) and return
        where it went: `failed-deploys/` under the state folder keeps the last `keep`."""
        if not self.log_file.exists():
            return None
        folder = Path(self.config.state_dir) / "failed-deploys"
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.config.model_name)
        kept = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{str(self.uuid)[:8]}.log"
        shutil.move(str(self.log_file), kept)
        for old in sorted(folder.glob("*.log"))[:-keep]:
            old.unlink(missing_ok=True)
        return kept

    def remove_files(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
