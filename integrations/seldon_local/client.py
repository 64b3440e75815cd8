"""Talk to a served model over Seldon's REST protocols (works against a cluster too)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import requests

from core.errors import ZenkubeError
from core.protocol import v2
from integrations.seldon_local.process import get_protocol


def _jsonable(frame: pd.DataFrame) -> dict[str, list]:
    """Columns of JSON values: missing -> null, dates -> ISO text, numpy scalars -> Python."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            column = column.map(lambda v: v.isoformat() if pd.notna(v) else None)
        values = column.astype(object).where(column.notna(), None).tolist()
        columns[str(name)] = [v.item() if isinstance(v, np.generic) else v for v in values]
    return columns


def request_body(protocol: str, frame: pd.DataFrame) -> dict:
    """The body of a request for these rows in the protocol's codec (core/protocol/):
    V2 takes the frame's columns as they are, Seldon its rows."""
    columns = _jsonable(frame)
    if protocol == "v2":
        return v2.encode_columns(columns)
    rows = [list(row) for row in zip(*columns.values(), strict=True)]
    return get_protocol(protocol).request_body(list(columns), rows)


PROBE_HEADER = "X-Zenkube-Probe"  # a check of zenkube's own: not traffic to monitor
# On a cluster: Seldon's executor then logs nothing (seldon-core v1.18.2
# `executor/predictor/predictor_process.go`, `logPayload`); KServe's logger forwards the
# probe header as Ce-Metadata (InferenceService `logger.metadataHeaders`), which the
# traffic sink skips.
PROBE_HEADERS = {PROBE_HEADER: "smoke", "Seldon-Skip-Logging": "true"}


def predict(
    url: str,
    protocol: str,
    frame: pd.DataFrame,
    timeout: float = 60,
    host: str | None = None,
    probe: bool = False,
) -> list:
    """POST the rows; return predictions or raise with the server's reason. `host`: the
    Host header a cluster ingress routes by (KServe); the local servers ignore it.
    `probe`: zenkube's own smoke request, which the front does not record as traffic."""
    headers = {**({"Host": host} if host else {}), **(PROBE_HEADERS if probe else {})}
    try:
        response = requests.post(
            url, json=request_body(protocol, frame), timeout=timeout, headers=headers or None
        )
    except requests.RequestException as exc:
        raise ZenkubeError(
            f"Cannot reach the model at {url} ({exc}). Is it running? `python run.py serve status`"
        ) from exc
    if response.status_code != 200:
        raise ZenkubeError(
            f"The model server answered HTTP {response.status_code}: {response.text[:800]}"
        )
    return get_protocol(protocol).predictions(response.json())


def curl_command(url: str, protocol: str, frame: pd.DataFrame, host: str | None = None) -> str:
    body = json.dumps(request_body(protocol, frame.head(1)))
    route = f" -H {shlex.quote('Host: ' + host)}" if host else ""
    return (
        f"curl -s -X POST {url}{route} -H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
