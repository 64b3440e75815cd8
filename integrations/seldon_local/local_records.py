"""Reads for the read-only commands, without importing ZenML or MLflow (issue #33).

Importing ZenML costs ~2-4 s and MLflow ~3-9 s on this project's 2-core machines, more
than the whole answer of `serve status` or `history` should take. What those commands
read is small and kept in files on this machine:

- the MLflow registry's SQLite file (the champion alias, the history tags): read with
  `sqlite3` in read-only mode, table by table as MLflow's own store defines them
  (mlflow/store/model_registry/dbmodels/models.py: SqlRegisteredModelAlias,
  SqlRegisteredModelTag; MLflow 3 adds the `workspace` column, 'default' here). A
  tracking server (http) is read through MLflow's client instead, imported then;
- ZenML's service records in its SQLite store (zenml/zen_stores/schemas/
  service_schemas.py, ServiceSchema: `labels`, `config` and `status` are base64-encoded
  JSON; `to_model` decodes them the same way), for the local Seldon deployer, and its
  completed pipeline runs with their steps' output artifacts, for `monitor history`;
- the model's front, over its Unix socket, and the server folders (integrations/
  seldon_local/front.py, process.py), which are ZenML-free already.

Everything that writes goes through ZenML and MLflow as before; only reads come here.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.mlflow.tags import CHAMPION_ALIAS
from integrations.seldon_local.pids import command_line
from integrations.seldon_local.server_files import ServerFiles

MLFLOW_WORKSPACE = "default"
CANDIDATE_LABEL = ("zenkube.release", "candidate")  # integrations/zenml_adapters/service_records.py


def _read_only(path: str | Path) -> sqlite3.Connection:
    """A read-only connection that waits (up to 10 s) for a writer to finish."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


class Registry:
    """The MLflow registry's reads `history` needs: a model's alias and its tags."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self.db = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else None  # fmt: skip

    def champion(self, name: str) -> str | None:
        """The version the `champion` alias names (None: no alias, or no such model)."""
        if self.db is None:
            return self._client_champion(name)
        if not Path(self.db).exists():
            return None
        with closing(_read_only(self.db)) as db:
            row = db.execute(
                "SELECT version FROM registered_model_aliases "
                "WHERE name = ? AND alias = ? AND workspace = ?",
                (name, CHAMPION_ALIAS, MLFLOW_WORKSPACE),
            ).fetchone()
        return str(row[0]) if row else None

    def tags(self, name: str) -> dict[str, str]:
        """The registered model's tags ({} when there is no such model)."""
        if self.db is None:
            return self._client_tags(name)
        if not Path(self.db).exists():
            return {}
        with closing(_read_only(self.db)) as db:
            rows = db.execute(
                'SELECT "key", value FROM registered_model_tags WHERE name = ? AND workspace = ?',
                (name, MLFLOW_WORKSPACE),
            ).fetchall()
        return dict(rows)

    def version_tags(self, name: str) -> list[tuple[str, dict[str, str]]]:
        """Every version of the model with its tags, newest first (SqlModelVersion and
        SqlModelVersionTag of the same file)."""
        if self.db is None:
            return self._client_version_tags(name)
        if not Path(self.db).exists():
            return []
        with closing(_read_only(self.db)) as db:
            versions = db.execute(
                "SELECT version FROM model_versions WHERE name = ? AND workspace = ?",
                (name, MLFLOW_WORKSPACE),
            ).fetchall()
            rows = db.execute(
                'SELECT version, "key", value FROM model_version_tags '
                "WHERE name = ? AND workspace = ?",
                (name, MLFLOW_WORKSPACE),
            ).fetchall()
        found: dict[str, dict[str, str]] = {str(v): {} for (v,) in versions}
        for version, key, value in rows:
            found.setdefault(str(version), {})[key] = value
        return sorted(found.items(), key=lambda item: -int(item[0]))

    def _client_version_tags(self, name: str) -> list[tuple[str, dict[str, str]]]:
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().search_model_versions(f"name = '{name}'")
        except MlflowException:
            return []
        return sorted(
            ((str(v.version), dict(v.tags or {})) for v in found), key=lambda v: -int(v[0])
        )

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _client_champion(self, name: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client().get_model_version_by_alias(name, CHAMPION_ALIAS).version)
        except MlflowException:
            return None

    def _client_tags(self, name: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self._client().get_registered_model(name).tags or {})
        except MlflowException:
            return {}


# -- the local Seldon deployer's services, from ZenML's store --------------------------------
@dataclass
class Status:
    state: str = "inactive"
    last_error: str = ""


@dataclass
class LocalService(ServerFiles):
    """A local Seldon service as `serve status` shows it: the fields of its ZenML record
    (integrations/seldon_local/service.py, SeldonLocalService) it needs, with the same
    file and process reads, without the ZenML classes."""

    uuid: str
    config: Any  # model_name, model_version, protocol, state_dir, model_uri
    labels: dict = field(default_factory=dict)
    status: Status = field(default_factory=Status)

    @property
    def port(self) -> int | None:
        record = self._record()
        return record.get("public_port") or record.get("port")

    @property
    def pid(self) -> int | None:
        return self._record().get("pid")

    @property
    def prediction_url(self) -> str | None:
        port, protocol = self.port, self.protocol
        return protocol.url(port, self.served_name, protocol.predict_path) if port else None

    @property
    def healthcheck_url(self) -> str | None:
        port, protocol = self.port, self.protocol
        return protocol.url(port, self.served_name, protocol.health_path) if port else None

    @property
    def is_running(self) -> bool:
        """Polls, as ZenML's `BaseService.is_running` does."""
        self.update_status()
        return self.status.state == "active"

    def update_status(self) -> None:
        from integrations.seldon_local import process

        state, why = process.server_state(
            self.pid, self.backend_port, self.front, self.protocol, self.served_name,
            self.config.model_name, self.standbys,
        )  # fmt: skip
        self.status = Status(state, why)


class _Config:
    def __init__(self, data: dict):
        self.__dict__.update(data)
        self.model_version = str(data.get("model_version") or "")


def service_records(
    store_file: str, flavor: str, model_name: str | None = None, candidates: bool = False
) -> list[LocalService]:
    """The finished service records of `flavor` in ZenML's SQLite store (of one model),
    newest first: the served ones, or (`candidates`) releases' candidates; as
    integrations/zenml_adapters/service_records.records selects them."""
    if not Path(store_file).exists():
        return []
    with closing(_read_only(store_file)) as db:
        rows = db.execute(
            "SELECT id, labels, config FROM service WHERE type = 'model-serving' AND flavor = ? "
            "AND service_source IS NOT NULL AND service_source != '' ORDER BY created DESC",
            (flavor,),
        ).fetchall()
    found = []
    for service_id, labels, config in rows:
        config = _decoded(config) or {}
        labels = _decoded(labels) or {}
        if model_name and config.get("model_name") != model_name:
            continue
        if (labels.get(CANDIDATE_LABEL[0]) == CANDIDATE_LABEL[1]) != candidates:
            continue
        found.append(LocalService(uuid=_uuid(service_id), config=_Config(config), labels=labels))
    return found


def _decoded(blob) -> Any:
    if blob is None:
        return None
    if isinstance(blob, str):
        blob = blob.encode()
    return json.loads(base64.b64decode(blob).decode())


def watcher_alive(front_dir: Path, model_name: str) -> bool:
    """Whether the release watcher of `model_name` runs (the pid file beside its log in
    the model's front folder names a live `release watch` process)."""
    try:
        pid = int((Path(front_dir) / "release-watch.pid").read_text())
    except (OSError, ValueError):
        return False
    command = command_line(pid) or []
    return b"release" in command and b"watch" in command and model_name.encode() in command


# -- monitoring runs and their artifacts, from ZenML's store ---------------------------------
@dataclass
class StoredRun:
    """A completed pipeline run as `monitor history` reads it: its name, pipeline, start
    (ZenML's `created`, UTC) and each step's outputs {(step, output): [(artifact version
    id, uri), ...]} oldest first (zenml/zen_stores/schemas: PipelineRunSchema,
    StepRunSchema, StepRunOutputArtifactSchema, ArtifactVersionSchema)."""

    id: str
    name: str
    pipeline: str
    created: str
    outputs: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)

    def output(self, step: str, name: str) -> tuple[str, str] | None:
        """The newest (artifact version id, uri) `step` output as `name` (None: none)."""
        found = self.outputs.get((step, name))
        return found[-1] if found else None


def _uuid(value) -> str:
    text = str(value)
    if len(text) == 32:  # ZenML stores UUIDs as 32 hex digits
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def completed_runs(
    store_file: str, pipelines: tuple[str, ...], parameter: tuple[str, str], limit: int
) -> list[StoredRun]:
    """The newest `limit` completed runs of `pipelines` whose pipeline parameter
    `parameter[0]` is `parameter[1]`, oldest first, with their steps' outputs (as ZenML's
    `list_pipeline_runs(status="completed", sort_by="desc:created")` and `run.steps` give
    them: the run's parameters are its snapshot's pipeline configuration, or its own for a
    run without one; a retried step's earlier attempt is not one of its steps)."""
    if not Path(store_file).exists() or not pipelines:
        return []
    key, wanted = parameter
    marks = ", ".join("?" * len(pipelines))
    with closing(_read_only(store_file)) as db:
        rows = db.execute(
            "SELECT r.id, r.name, r.created, p.name, "
            "COALESCE(s.pipeline_configuration, r.pipeline_configuration) "
            "FROM pipeline_run r JOIN pipeline p ON p.id = r.pipeline_id "
            "LEFT JOIN pipeline_snapshot s ON s.id = r.snapshot_id "
            f"WHERE p.name IN ({marks}) AND r.status = 'completed' ORDER BY r.created DESC",
            pipelines,
        ).fetchall()
        runs: dict[str, list[StoredRun]] = {name: [] for name in pipelines}
        for run_id, name, created, pipeline, configuration in rows:
            mine = runs[pipeline]
            if len(mine) >= limit:
                continue
            try:
                parameters = json.loads(configuration or "{}").get("parameters") or {}
            except ValueError:
                continue
            if parameters.get(key) == wanted:
                mine.append(StoredRun(run_id, name, pipeline, created))
        found = sorted((r for mine in runs.values() for r in mine), key=lambda r: r.created)
        found = found[-limit:]
        for run in found:
            outputs = db.execute(
                "SELECT st.name, o.name, av.id, av.uri FROM step_run st "
                "JOIN step_run_output_artifact o ON o.step_id = st.id "
                "JOIN artifact_version av ON av.id = o.artifact_id "
                "WHERE st.pipeline_run_id = ? AND st.status != 'retried' "
                "ORDER BY st.created, av.created",
                (run.id,),
            ).fetchall()
            for step, output, artifact_id, uri in outputs:
                run.outputs.setdefault((step, output), []).append((_uuid(artifact_id), uri))
    return found
