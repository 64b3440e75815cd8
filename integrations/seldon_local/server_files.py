"""The files of one local model server, `<state_dir>/<service uuid>/`, and what they say:
shared by its ZenML service record (service.py, SeldonLocalService) and the ZenML-free
reader of the read-only commands (local_records.py, LocalService). No ZenML here."""

from __future__ import annotations

import json
from pathlib import Path

from core.protocol import OLD_V2_NAME, v2_model_name


class ServerFiles:
    """Needs `self.uuid` and `self.config` with `state_dir`, `model_name`, `protocol`."""

    @property
    def workdir(self) -> Path:
        return Path(self.config.state_dir) / str(self.uuid)

    @property
    def log_file(self) -> Path:
        return self.workdir / "server.log"

    def _record(self) -> dict:
        try:
            return json.loads((self.workdir / "server.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def port_note(self) -> str:
        """Set when the endpoint had to move to another port (the old one was taken)."""
        return self._record().get("port_note") or ""

    @property
    def backend_port(self) -> int | None:
        """The port the model server itself listens on, behind the front."""
        return self._record().get("port")

    @property
    def standbys(self) -> list[tuple[int | None, int]]:
        """(pid, port) of each warm standby of this server (replicas.py)."""
        from integrations.seldon_local import replicas

        return [(r.pid, r.port) for r in replicas.of(self._record())[1:]]

    @property
    def front(self):
        """The model's front (front.py): the stable port clients call."""
        from integrations.seldon_local.front import ModelFront

        return ModelFront(self.config.state_dir, self.config.model_name)

    @property
    def protocol(self):
        from integrations.seldon_local import process

        return process.get_protocol(self.config.protocol)

    @property
    def served_name(self) -> str:
        """V2: the registered model's name (`/v2/models/<name>/infer`; the old
        `/v2/models/classifier/…` paths are answered too). Seldon: `classifier`, the
        graph node's name on a cluster (its paths hold no model name)."""
        if self.config.protocol != "v2":
            return OLD_V2_NAME
        # A server started before V2 models had their own name keeps the one it serves.
        launch = self.log_file.with_name(self.log_file.stem + ".launch.json")
        try:
            command = json.loads(launch.read_text())["command"]
            return str(command[command.index("--model-name") + 1])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return v2_model_name(self.config.model_name)
