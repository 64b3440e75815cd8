"""What zenkube's client sends: JSON rows, or a large Seldon batch as binData (an Arrow
stream) to the servers that read it, decoded to the same values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.protocol import seldon
from integrations.seldon_local import client


def frame_of(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.where(np.arange(rows) % 7 == 0, np.nan, np.arange(rows, dtype=float)),
            "city": ["Oslo", None] * (rows // 2) + ["Rome"] * (rows % 2),
            "signup": pd.to_datetime(["2024-01-02"] * rows),
            "member": [True, False] * (rows // 2) + [None] * (rows % 2),
        }
    )


def test_a_batch_from_the_threshold_up_goes_as_bindata_with_the_json_rows_values():
    small, large = frame_of(client.BINARY_ROWS - 1), frame_of(client.BINARY_ROWS)
    assert "data" in client.request_body("seldon", small, client.BINARY_ROWS)
    body = client.request_body("seldon", large, client.BINARY_ROWS)
    assert set(body) == {"binData"}
    columns, names = seldon.decode_request(body)
    rows, json_names = seldon.decode_request(client.request_body("seldon", large))
    assert names == json_names == list(large.columns)
    for i, name in enumerate(names):
        sent = [r[i] for r in rows]  # the JSON body's values: null for missing
        got = columns[name].tolist() if hasattr(columns[name], "tolist") else columns[name]
        assert [None if isinstance(v, float) and math.isnan(v) else v for v in got] == sent
    assert columns["signup"][0] == "2024-01-02T00:00:00"  # dates as ISO text, as in JSON


def test_json_rows_without_the_threshold_for_v2_and_for_a_column_of_mixed_types():
    large = frame_of(client.BINARY_ROWS)
    assert "data" in client.request_body("seldon", large)  # a server not known to read it
    assert "inputs" in client.request_body("v2", large, client.BINARY_ROWS)
    large["city"] = ["Oslo", 7] * (len(large) // 2)  # the server words this refusal
    assert "data" in client.request_body("seldon", large, client.BINARY_ROWS)


def test_only_the_local_deployer_says_its_servers_read_bindata():
    from integrations.kubeflow.seldon import ZenkubeSeldonModelDeployer
    from integrations.seldon_local.model_deployer import SeldonLocalModelDeployer

    assert SeldonLocalModelDeployer.BINARY_BODIES  # zenkube's runtime
    assert not ZenkubeSeldonModelDeployer.BINARY_BODIES  # a cluster's MLFLOW_SERVER
