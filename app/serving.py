"""What is served: services of the active stack's model deployer, and rows to send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ZenkubeError


def served_services(model_name: str | None = None) -> tuple[Any, list]:
    """(The active model deployer, its services for `model_name` or all), newest first."""
    from zenml.client import Client

    deployer = Client().active_stack.model_deployer
    if deployer is None:
        raise ConfigError(
            "The active stack has no model deployer; run `python run.py stack up local`."
        )
    if hasattr(deployer, "services_for"):
        return deployer, deployer.services_for(model_name)
    kwargs = {"model_name": model_name} if model_name else {}
    return deployer, deployer.find_model_server(**kwargs)


def current_service(model_name: str | None, protocol: str | None = None):
    """The newest deployment of `model_name` (any, when None) speaking `protocol` (any)."""
    _, services = served_services(model_name)
    if protocol:
        services = [s for s in services if getattr(s.config, "protocol", "seldon") == protocol]
    if not services:
        raise ZenkubeError("Nothing is deployed yet. Run `python run.py deploy` first.")
    return services[0]


def served_protocol(model_name: str | None) -> str | None:
    """The protocol `model_name` is served with now (None when it is not served)."""
    try:
        _, services = served_services(model_name)
    except ConfigError:
        return None
    if services and hasattr(services[0].config, "protocol"):
        return services[0].config.protocol
    return None


def example_rows(model_name: str, rows: int = 3):
    """A few held-out feature rows of the champion (for a smoke prediction and a curl)."""
    from steps.monitoring.batch import champion_artifacts

    reference, _ = champion_artifacts(model_name)
    return reference.features.head(rows)


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
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable CSV file: {exc}") from exc
