"""What is served: the active stack's deployments, their status, and rows to send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ZenkubeError


def served_services(model_name: str | None = None) -> tuple[Any, list]:
    """(The active model deployer, its services for `model_name` or all), newest first."""
    from integrations.zenml_adapters import deployer

    active = deployer.active_deployer()
    return active, deployer.services_for(active, model_name)


def served_version(model_name: str) -> str | None:
    """The MLflow version `model_name`'s endpoint serves now (None: nothing running)."""
    from integrations.zenml_adapters import deployer

    try:
        service = deployer.served(deployer.active_deployer(), model_name)
    except ConfigError:
        return None
    return str(service.config.model_version) if service is not None else None


def served_record(model_name: str, state_dir: str | None = None) -> dict:
    """The served state of `model_name`'s local endpoint ({} when it was never served):
    version, protocol, port, release, ... (integrations/seldon_local/front.py
    `served_state`; standard library, no ZenML). `state_dir`: the local deployer's
    (default `$ZENKUBE_HOME/serving`)."""
    from core.paths import zenkube_home
    from integrations.seldon_local.front import served_state

    return served_state(state_dir or zenkube_home() / "serving", model_name)


def _state_name(state) -> str:
    """A service state's name: ZenML's enum or the ZenML-free view's text."""
    return str(getattr(state, "value", state))


def current_service(model_name: str | None, protocol: str | None = None):
    """The newest deployment of `model_name` (any, when None) speaking `protocol` (any)."""
    from integrations.zenml_adapters.deployer import protocol_of

    deployer, services = served_services(model_name)
    if protocol:
        services = [s for s in services if protocol_of(deployer, s) == protocol]
    if not services:
        hint = f" --model-name {model_name}" if model_name else ""
        raise ZenkubeError(f"Nothing is deployed yet. Run `python run.py deploy{hint}` first.")
    return services[0]


def predict(input_path: str, protocol: str | None, model_name: str | None) -> Any:
    """Send the rows of `input_path` to the served model; its predictions."""
    from integrations.seldon_local import client
    from integrations.zenml_adapters.deployer import protocol_of

    frame = read_rows(input_path)
    deployer, _ = served_services(model_name)
    service = current_service(model_name, protocol)
    schema = served_schema(service)
    refuse_no_rows(frame, input_path, schema)
    frame, dropped = not_inputs_dropped(frame, schema)
    if dropped:  # on the terminal's stderr (the command's own goes to the log): stdout is JSON
        import sys

        print(
            f"zenkube: left out {', '.join(dropped)}: not inputs of the model", file=sys.__stderr__
        )
    binary_rows = client.BINARY_ROWS if getattr(deployer, "BINARY_BODIES", False) else None
    return client.predict(
        service.prediction_url, protocol_of(deployer, service), frame, binary_rows=binary_rows
    )


def served_schema(service):
    """The input schema recorded with the served model (None when it cannot be read)."""
    from core.errors import is_interrupt
    from integrations.mlflow import registry as mlflow_registry

    try:
        mlflow_registry.configure_from_stack()
        config = service.config
        registered = mlflow_registry.get_version(config.model_name, str(config.model_version))
        return mlflow_registry.read_input_schema(registered.model_uri)
    except Exception as exc:  # no schema to go by: the rows go as they are
        if is_interrupt(exc):
            raise
        return None


def refuse_no_rows(frame, path: str, schema) -> None:
    """A file with no rows to send (zero bytes, blank lines, a header row alone, `[]`) is
    refused in one paragraph naming the served model's columns, before any request."""
    from steps.inference.chunks import no_rows

    if not len(frame):
        header = [str(c) for c in frame.columns]
        columns = [c.name for c in schema.columns] if schema is not None else None
        raise ConfigError(no_rows(path, header, columns))


def not_inputs_dropped(frame, schema) -> tuple[Any, list[str]]:
    """Rows as the endpoint takes them: a copy of the training table still carries the
    label and the row-identifier columns the model left out; they are not sent."""
    if schema is None:
        return frame, []
    inputs = {column.name for column in schema.columns}
    extra = [
        c
        for c in dict.fromkeys([schema.target, *schema.ignored_columns])
        if c and c in frame.columns and c not in inputs
    ]
    return frame.drop(columns=extra), extra


class LocalDeployerView:
    """The local Seldon deployer as `serve status` and `release status` read it: its
    service records, server folders and fronts, without ZenML
    (integrations/seldon_local/local_records.py). It answers what SeldonLocalModelDeployer answers to them."""

    PROTOCOLS = ("seldon", "v2")

    def __init__(self, store_file: str, state_dir: str):
        self.store_file = store_file
        self._state_dir = state_dir

    def state_dir(self) -> str:
        return self._state_dir

    def services_for(self, model_name: str | None = None, candidates: bool = False) -> list:
        from integrations.seldon_local.local_records import service_records

        return service_records(self.store_file, "seldon_local", model_name, candidates)

    def candidates_for(self, model_name: str | None = None) -> list:
        return self.services_for(model_name, candidates=True)

    def protocol_of(self, service) -> str:
        return getattr(service.config, "protocol", None) or self.PROTOCOLS[0]

    def front_of(self, model_name: str):
        from integrations.seldon_local.front import ModelFront

        return ModelFront(self.state_dir(), model_name)

    def release_state(self, model_name: str) -> dict | None:
        front = self.front_of(model_name)
        if front.status() is None:
            return None
        return front.release_status() or None

    def get_model_server_info(self, service) -> dict[str, str | None]:
        front = service.front
        return {
            "PREDICTION_URL": service.prediction_url,
            "HEALTH_CHECK_URL": service.healthcheck_url,
            "PROTOCOL": self.protocol_of(service),
            "MODEL_URI": getattr(service.config, "model_uri", None),
            "LOG_FILE": str(service.log_file),
            "FRONT_LOG": str(front.log_file),
            "METRICS_URL": front.metrics_url,
            "RESTARTS": front.restarts_note(),
            "REPLICAS": front.replicas_note(),
            "PORT_NOTE": service.port_note or None,
        }


def local_view(record: dict | None) -> LocalDeployerView | None:
    """The ZenML-free view of the prepared stack's deployer (None: the stack's deployer
    is not the local Seldon one, or nothing is prepared: ask ZenML)."""
    stack = (record or {}).get("stack") or {}
    deployer = stack.get("deployer") or {}
    if deployer.get("flavor") != "seldon_local" or not stack.get("store_file"):
        return None
    return LocalDeployerView(stack["store_file"], deployer["state_dir"])


def view_for_reading(echo) -> LocalDeployerView | None:
    """For a read-only command: the ZenML-free view when the prepared stack has one;
    otherwise ZenML is prepared (once) and None says to ask it. A stack whose steps run in
    pods keeps its deployments in the ZenML server's store: without a server, one paragraph."""
    from app import session

    view = local_view(session.prepared())
    if view is None:
        session.ready(echo)
    return view


def _deployer_and_services(model_name: str | None, view) -> tuple[Any, list]:
    if view is not None:
        return view, view.services_for(model_name)
    return served_services(model_name)


def _protocol_of(deployer, service) -> str:
    if isinstance(deployer, LocalDeployerView):
        return deployer.protocol_of(service)
    from integrations.zenml_adapters.deployer import protocol_of

    return protocol_of(deployer, service)


def status(model_name: str | None, echo=print, view: LocalDeployerView | None = None) -> list[str]:
    """One paragraph per deployment: model, protocol, state, endpoint, log file (printed).
    With `view`, read without ZenML."""
    deployer, services = _deployer_and_services(model_name, view)
    hint = f" --model-name {model_name}" if model_name else ""
    if not services:
        echo(f"No deployments. Run `python run.py deploy{hint}`.")
        return []
    lines = []
    for service in services:
        state = "up" if service.is_running else "down"
        if state == "down" and _state_name(service.status.state) == "pending_startup":
            state = "restarting"  # its front died; the front's keeper starts it again
        info = deployer.get_model_server_info(service)
        where = (
            f"log: {info['LOG_FILE']}"
            if info.get("LOG_FILE")
            else f"InferenceService: {info.get('INFERENCE_SERVICE')}"  # KServe: kubectl logs
        )
        name = service.config.model_name
        lines.append(
            f"{name} v{service.config.model_version} [{_protocol_of(deployer, service)}] "
            f"{state}  {info.get('PREDICTION_URL')}\n    {where}   id: {service.uuid}"
        )
        if info.get("HOST_HEADER"):
            lines.append(f"    Host header: {info['HOST_HEADER']}")
        if info.get("METRICS_URL") and state == "up":
            lines.append(f"    metrics: {info['METRICS_URL']}")
        if info.get("REPLICAS") and state == "up":
            lines.append(f"    replicas: {info['REPLICAS']}")
        if info.get("RESTARTS"):  # the model's front restarted a server that died
            lines.append(f"    restarts: {info['RESTARTS']}")
        if state == "restarting":
            lines.append(f"    why: {service.status.last_error}; no command is needed")
        if state == "down":
            why = service.status.last_error or "not running"
            lines.append(
                f"    why: {why}\n    restore it with: python run.py deploy --model-name {name}"
            )
    lines += candidate_lines(deployer, model_name)
    for line in lines:
        echo(line)
    return lines


def candidate_lines(deployer, model_name: str | None) -> list[str]:
    """Releases' candidates (`release status` has their evidence): one paragraph each."""
    if isinstance(deployer, LocalDeployerView):
        found, release_state = deployer.candidates_for(model_name), deployer.release_state
    else:
        from integrations.zenml_adapters.deployer import candidates
        from integrations.zenml_adapters.deployer import release_state as state_of

        found = candidates(deployer, model_name)

        def release_state(name):
            return state_of(deployer, name)

    lines = []
    for service in found:
        name = service.config.model_name
        state = release_state(name) or {}
        mode = state.get("mode")
        if not state:  # the front is down, or the release is gone
            about = "its release is not running: `python run.py serve repair` stops it"
        else:
            share = f"canary {state.get('percent'):g}%" if mode == "canary" else mode
            about = f"{share}, release {state.get('state')}"
        info = deployer.get_model_server_info(service)
        beside = (state.get("champion") or {}).get("version")
        lines.append(
            f"{name} v{service.config.model_version} candidate ({about}) "
            f"{'up' if service.is_running else 'down'}"
            + (f"  beside v{beside}" if beside else "")
            + "\n"
            f"    log: {info.get('LOG_FILE')}   id: {service.uuid}\n"
            f"    evidence: python run.py release status --model-name {name}"
        )
    return lines


def stop(model_name: str | None, echo=print) -> None:
    """Stop the local model servers (of `model_name`, or all); one line per server."""
    from zenml.enums import ServiceState

    from integrations.seldon_local import process

    deployer, services = served_services(model_name)
    if not services:
        echo("Nothing is deployed, so nothing to stop.")
    for service in services:
        what = f"{service.config.model_name} v{service.config.model_version}"
        pid = getattr(service, "pid", None)  # a local server's: alive though not forwarded to
        up = service.status.state != ServiceState.INACTIVE or process.is_alive(pid)
        deployer.stop_model_server(service.uuid, timeout=30)  # leftovers go either way
        echo(
            f"stopped {what}"
            if up
            else f"{what} was not running (`python run.py deploy` starts it again)"
        )
    from integrations.zenml_adapters.deployer import candidates

    for service in candidates(deployer, model_name):  # its release ends with the front
        deployer.stop_model_server(service.uuid, timeout=30)
        name, version = service.config.model_name, service.config.model_version
        echo(f"stopped {name} v{version} (a release's candidate)")
    from steps.deployment.release import stop_watcher

    for name in dict.fromkeys(s.config.model_name for s in services):
        if stop_watcher(deployer, name):  # nothing left for it to finish
            echo(f"stopped the release watcher of {name}")


def example_rows(model_name: str, rows: int = 3):
    """A few held-out feature rows of the champion (for a smoke prediction and a curl)."""
    from integrations.mlflow import champion

    version = champion.require_champion(model_name, "serve").zenml_version
    return version.get_artifact("train_set").load().features.head(rows)


def read_rows(path: str):
    """Feature rows from a CSV file, or JSON (a list of objects or {columns, data})."""
    import pandas as pd

    file = Path(path)
    if not file.exists():
        raise ConfigError(f"Input file not found: {path}")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and "columns" in data:
            return pd.DataFrame(data.get("data", []), columns=data["columns"])
        if isinstance(data, list):
            return pd.DataFrame(data)
        raise ConfigError(f"{path}: use a list of row objects or {{columns, data}}.")
    try:
        return pd.read_csv(file)
    except pd.errors.EmptyDataError:  # not even a header row: no rows (refuse_no_rows)
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable CSV file: {exc}") from exc
