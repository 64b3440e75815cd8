"""One conformance suite for every backend: in-process `model.predict`, the local Seldon
server (v1), the local MLServer (V2), and the cluster backends' manifests.

- Property-based rows (hypothesis; numbers, text, dates, a boolean, missing values
  anywhere, names in any order) get model.predict's answer on both local protocols.
- The same bad requests get the same 4xx status and the same reason on both protocols.
- The cluster backends point at what the local servers run: Seldon Core at the same model
  files with the same implementation and protocol paths; KServe at the same files on V2,
  with a runtime that loads the local V2 server's runtime class.
A backend that drifts from the others fails here. Two model names are served side by
side, each on its own endpoint.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zenml.client import Client

from app import runner as runs
from integrations import mlflow_registry
from integrations.seldon_local import client
from tests.conftest import FAST_TRAINER
from tests.messy import messy_frame, write_csv
from tests.serving.helpers import deploy_folder, stop_all

SELDON, V2 = "mixed-seldon", "mixed-v2"
CITIES = ["Oslo", "Rome", "Lima", "Pune"]


@pytest.fixture(scope="module")
def served(module_store, tmp_path_factory):
    path = write_csv(
        messy_frame(), tmp_path_factory.mktemp("d") / "t.csv", drop=("price", "visits")
    )
    runs.train(
        None,
        {
            "model_name": SELDON,
            **FAST_TRAINER,
            "data.source": path,
            "data.target": "tier",
            "gate.threshold": 0.3,
        },
    )
    seldon = runs.deploy(None, {"model_name": SELDON, "protocol": "seldon"})
    deployer = Client().active_stack.model_deployer
    folder = deployer.services_for(SELDON)[0].model_dir
    v2 = deploy_folder(V2, folder, "1", protocol="v2")
    mlflow_registry.configure_from_stack()
    model = mlflow_registry.load_model(f"models:/{SELDON}@champion")
    yield {"seldon": seldon.prediction_url, "v2": v2.prediction_url, "model": model}
    stop_all()


def in_process_frame(rows: list[dict]) -> pd.DataFrame:
    """What pandas would hold for these rows: a missing cell is NaN."""
    frame = pd.DataFrame(rows).astype(object)
    return frame.where(frame.notna(), np.nan)


missing = st.none()
numbers = st.one_of(
    missing,
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
row = st.fixed_dictionaries(
    {
        "age": numbers,
        "score": numbers,
        "city": st.one_of(
            missing, st.sampled_from(CITIES), st.text("xyzQ", min_size=1, max_size=6)
        ),
        "signup": st.one_of(
            missing,
            st.dates(dt.date(1990, 1, 1), dt.date(2040, 1, 1)).map(lambda d: d.isoformat()),
        ),
        "member": st.one_of(missing, st.booleans()),
    }
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(row, min_size=1, max_size=4),
    order=st.permutations(["age", "score", "city", "signup", "member"]),
)
def test_every_row_the_model_accepts_gets_the_same_answer_on_both_protocols(served, rows, order):
    frame = in_process_frame(rows)[list(order)]
    expected = served["model"].predict(frame).tolist()
    for protocol in ("seldon", "v2"):
        assert client.predict(served[protocol], protocol, frame) == expected, protocol


def test_two_models_are_served_side_by_side_on_their_own_endpoints(served):
    assert served["seldon"].split("/")[2] != served["v2"].split("/")[2]
    deployer = Client().active_stack.model_deployer
    assert {s.config.model_name for s in deployer.services_for() if s.is_running} >= {SELDON, V2}


GOOD = {"age": 30.0, "score": 0.1, "city": "Oslo", "signup": "2024-01-01", "member": True}


def bad_request(protocol: str, kind: str) -> tuple[str, str | bytes, dict]:
    """(method, body, headers) of one kind of bad request, on `protocol`."""
    frame = pd.DataFrame([GOOD])
    json_header = {"Content-Type": "application/json"}
    good = json.dumps(client.request_body(protocol, frame)).encode()
    if kind in ENCODED:
        coding, body = ENCODED[kind](good)
        return "POST", body, {**json_header, "Content-Encoding": coding}
    if kind == "text in a numeric column":
        frame["age"] = ["old"]
    elif kind == "a numeric string":
        frame["score"] = ["1.5"]
    elif kind == "a number in a text column":
        frame["city"] = [7]
    elif kind == "an unknown column":
        frame = frame.rename(columns={"age": "years"})
    elif kind == "a missing column":
        frame = frame.drop(columns=["age"])
    elif kind == "invalid JSON":
        return "POST", "{nope", json_header
    elif kind == "a wrong method":
        return "GET", "", {}
    body = client.request_body(protocol, frame)
    text = json.dumps(body)
    if kind == "infinity":
        text = text.replace("30.0", "Infinity", 1)
    return "POST", text, json_header


ENCODED = {  # Content-Encoding cases: (header, body) made from a good body
    "an unknown Content-Encoding": lambda good: ("foo", good),
    "a list of encodings": lambda good: ("gzip, gzip", gzip.compress(gzip.compress(good))),
    "a body labelled gzip that is not": lambda good: ("gzip", good),
    "a body labelled deflate that is not": lambda good: ("deflate", good),
    # inflated once, the rest is forwarded as the body (no header): not JSON
    "gzip inside gzip": lambda good: ("gzip", gzip.compress(gzip.compress(good))),
    # 64 KiB that inflate past the 64 MiB limit: refused at the limit, not inflated whole
    "a gzip bomb": lambda good: ("gzip", gzip.compress(b"[" + b" " * (65 * 2**20))),
    "a good gzip body": lambda good: ("gzip", gzip.compress(good)),
}

BAD = {
    "an unknown Content-Encoding": (415, "Content-Encoding 'foo' is not supported"),
    "a list of encodings": (415, "send one Content-Encoding"),
    "a body labelled gzip that is not": (400, "labelled Content-Encoding: gzip but is not gzip"),
    "a body labelled deflate that is not": (400, "but is not deflate data"),
    "gzip inside gzip": (400, "not valid JSON"),
    "a gzip bomb": (413, "the body inflates to more than 64 MiB"),
    "a good gzip body": (200, ""),
    "text in a numeric column": (400, "column 'age' expects numbers; row 0 has 'old'"),
    "a numeric string": (400, "column 'score' expects numbers; row 0 has '1.5'"),
    "a number in a text column": (400, "column 'city' expects text; row 0 has 7"),
    "an unknown column": (400, "unknown column(s): years"),
    "a missing column": (400, "missing column(s): age"),
    "infinity": (400, "column 'age' row 0 is inf"),
    "invalid JSON": (400, "not valid JSON"),
    "a wrong method": (405, ""),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_the_same_bad_request_gets_the_same_status_and_reason_on_every_protocol(served, kind):
    status, reason = BAD[kind]
    for protocol in ("seldon", "v2"):
        method, text, headers = bad_request(protocol, kind)
        answer = requests.request(method, served[protocol], data=text, headers=headers, timeout=30)
        assert answer.status_code == status, (protocol, answer.text[:300])
        assert reason in answer.text, (protocol, answer.text[:300])
    good = pd.DataFrame([GOOD])
    expected = served["model"].predict(in_process_frame([GOOD])).tolist()
    for protocol in ("seldon", "v2"):  # and both serve on
        assert client.predict(served[protocol], protocol, good) == expected


def test_the_cluster_backends_point_at_what_the_local_servers_run(served):
    """Seldon Core and KServe manifests for the champion served locally, built by the same
    code the cluster deployers run (no cluster: stopping before the Kubernetes API)."""
    from zenml.integrations.seldon.seldon_client import SeldonDeployment

    from integrations.kserve import manifest as kserve
    from integrations.seldon_local.process import PROTOCOLS
    from steps.deployment.deploy import build_deployment_config

    deployer = Client().active_stack.model_deployer
    (local,) = [s for s in deployer.services_for(SELDON) if s.is_running]
    files = local.config.model_uri  # what the local server downloaded and serves
    champion = mlflow_registry.get_champion(SELDON)
    assert files == champion.artifact_location
    config = build_deployment_config(champion, "seldon", "p", "s")

    seldon = SeldonDeployment.build(
        name="zenml-test",
        model_uri=config.model_uri,
        model_name="classifier",
        implementation=config.implementation,
    ).model_dump(exclude_none=True)
    graph = seldon["spec"]["predictors"][0]["graph"]
    assert graph["modelUri"] == files and graph["implementation"] == "MLFLOW_SERVER"
    assert "protocol" not in seldon["spec"]  # Seldon's v1 protocol, as served locally
    assert graph["name"] == local.served_name  # the node name in the cluster's paths
    assert PROTOCOLS["seldon"].predict_path == "/api/v1.0/predictions"
    cluster_path = served["seldon"].replace("/api/v1.0/", "/api/v0.1/")  # ZenML's client path
    rows = pd.DataFrame([GOOD])
    answer = requests.post(cluster_path, json=client.request_body("seldon", rows), timeout=30)
    assert answer.status_code == 200

    isvc = kserve.inference_service(SELDON, champion.version, files, "zenkube", "sa")
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == files and model["protocolVersion"] == "v2"
    assert model["runtime"] == kserve.RUNTIME
    name = isvc["metadata"]["name"]
    assert kserve.prediction_path(name) == PROTOCOLS["v2"].predict_path.format(model=name)
    import yaml

    runtime = yaml.safe_load(open("stacks/kserve/zenkube-mlserver-runtime.yaml"))
    env = {e["name"]: e.get("value") for e in runtime["spec"]["containers"][0]["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == kserve.RUNTIME_CLASS
    launcher = open("integrations/seldon_local/runtime/launch_mlserver.py").read()
    assert f'implementation="{kserve.RUNTIME_CLASS}"' in launcher  # the local V2 server
