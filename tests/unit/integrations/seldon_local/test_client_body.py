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


def test_a_server_that_refuses_bindata_gets_the_same_rows_as_json():
    """A server started before binData existed (its runtime answers a body without "data"
    with a 400, as zenkube's did) still scores a large batch: the client sends the same
    rows again as JSON. A real mistake is reported with the server's words."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from core.errors import ZenkubeError

    seen: list[set] = []

    class OldServer(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(set(body))
            if "data" not in body:
                status, answer = 400, {"status": {"info": 'missing "data"'}}
            elif "surprise" in body["data"]["names"]:
                status, answer = 400, {"status": {"info": "unknown column(s): surprise"}}
            else:
                rows = body["data"]["ndarray"]
                status, answer = 200, {"data": {"ndarray": [0] * len(rows)}}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), OldServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1.0/predictions"
    try:
        frame = frame_of(client.BINARY_ROWS)
        assert len(client.predict(url, "seldon", frame, binary_rows=client.BINARY_ROWS)) == len(
            frame
        )
        assert seen == [{"binData"}, {"data"}]
        with pytest.raises(ZenkubeError, match="unknown column"):
            client.predict(url, "seldon", frame.assign(surprise=1), binary_rows=client.BINARY_ROWS)
    finally:
        server.shutdown()
