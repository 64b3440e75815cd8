"""Talk to a served model over Seldon's REST protocols (works against a cluster too)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import requests

from core.errors import ZenkubeError
from core.protocol import seldon, v2
from integrations.seldon_local.process import get_protocol

# A Seldon batch of this many rows or more goes to zenkube's own servers as `binData`
# (an Arrow stream: the server reads each column as one array instead of parsing every
# number of JSON rows; docs/performance.md §16); smaller ones, and every batch to a
# server that is not zenkube's (a cluster's MLFLOW_SERVER), as JSON rows.
BINARY_ROWS = 1_000


def _iso_dates(column: pd.Series) -> pd.Series:
    """Dates as ISO text (how both protocols send them); other columns as they are."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.map(lambda v: v.isoformat() if pd.notna(v) else None)
    return column


def _jsonable(frame: pd.DataFrame) -> dict[str, list]:
    """Columns of JSON values: missing -> null, dates -> ISO text, numpy scalars -> Python."""
    columns = {}
    for name in frame.columns:
        column = _iso_dates(frame[name])
        values = column.astype(object).where(column.notna(), None).tolist()
        columns[str(name)] = [v.item() if isinstance(v, np.generic) else v for v in values]
    return columns


def request_body(protocol: str, frame: pd.DataFrame, binary_rows: int | None = None) -> dict:
    """The body of a request for these rows in the protocol's codec (core/protocol/):
    V2 takes the frame's columns as they are, Seldon its rows; with `binary_rows` (a
    server that takes binData) and at least that many rows, Seldon its columns as
    `binData`, unless a column is not one of numbers, true/false or text (mixed types:
    JSON rows, whose refusal the server words)."""
    if protocol == "seldon" and binary_rows is not None and len(frame) >= binary_rows:
        try:
            return seldon.encode_binary({str(n): _iso_dates(frame[n]) for n in frame.columns})
        except ValueError:
            pass
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
    binary_rows: int | None = None,
) -> list:
    """POST the rows; return predictions or raise with the server's reason. `host`: the
    Host header a cluster ingress routes by (KServe); the local servers ignore it.
    `probe`: zenkube's own smoke request, which the front does not record as traffic.
    `binary_rows`: see `request_body` (BINARY_ROWS for zenkube's own servers)."""
    headers = {**({"Host": host} if host else {}), **(PROBE_HEADERS if probe else {})}

    def send(body: dict) -> requests.Response:
        try:
            return requests.post(url, json=body, timeout=timeout, headers=headers or None)
        except requests.RequestException as exc:
            raise ZenkubeError(
                f"Cannot reach the model at {url} ({exc}). Is it running? `python run.py serve status`"
            ) from exc

    body = request_body(protocol, frame, binary_rows)
    response = send(body)
    if response.status_code != 200 and "binData" in body:
        # A server started before binData existed (its runtime or environment is older
        # than this client) refuses it: the same rows as JSON, which every server reads;
        # a real mistake in the rows gets the same words either way.
        response = send(request_body(protocol, frame))
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
