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
import os
import time

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zenml.client import Client

from app import runner as runs
from core.traffic.rows import read_kind, stack_folder, traffic_batch
from integrations.mlflow import registry as mlflow_registry
from integrations.seldon_local import client
from integrations.seldon_local.process import get_protocol
from steps.inference.score import load_scoring_model, score_file
from tests.conftest import FAST_TRAINER
from tests.messy import messy_frame, write_csv
from tests.serving.helpers import deploy_folder, stop_all

SELDON, V2 = "mixed-seldon", "mixed-v2"
CITIES = ["Oslo", "Rome", "Lima", "Pune"]


def training_table() -> pd.DataFrame:
    """The messy table with two row-id columns in front, as public tables have them
    (`Order`, `PID`): training leaves them out, and the target `tier`."""
    frame = messy_frame().drop(columns=["price", "visits"])
    ids = pd.DataFrame(
        {"Order": range(1, len(frame) + 1), "PID": [f"p{i:05d}" for i in range(len(frame))]}
    )
    return pd.concat([ids, frame], axis=1)


@pytest.fixture(scope="module")
def served(module_store, tmp_path_factory):
    previous = os.environ.get("ZENKUBE_TRAFFIC_FLUSH_SECONDS")
    os.environ["ZENKUBE_TRAFFIC_FLUSH_SECONDS"] = "0.5"  # the fronts inherit it
    path = write_csv(training_table(), tmp_path_factory.mktemp("d") / "t.csv")
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
    yield {"seldon": seldon.prediction_url, "v2": v2.prediction_url, "model": model, "path": path}
    stop_all()
    if previous is None:
        os.environ.pop("ZENKUBE_TRAFFIC_FLUSH_SECONDS", None)
    else:
        os.environ["ZENKUBE_TRAFFIC_FLUSH_SECONDS"] = previous


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
WRONG_VALUE = {  # a good row with one value of the wrong type: (column, value)
    "text in a numeric column": ("age", "old"),
    "a numeric string": ("score", "1.5"),
    "a number in a text column": ("city", 7),
    "text in a true/false column": ("member", "yes"),
}


def wrong_row(kind: str) -> pd.DataFrame:
    """The good row, with one value of the wrong type (`kind` in WRONG_VALUE) or without
    `age` (a missing column)."""
    frame = pd.DataFrame([GOOD])
    if kind == "a missing column":
        return frame.drop(columns=["age"])
    if kind in WRONG_VALUE:
        column, value = WRONG_VALUE[kind]
        frame[column] = [value]
    return frame


def bad_request(protocol: str, kind: str) -> tuple[str, str | bytes, dict]:
    """(method, body, headers) of one kind of bad request, on `protocol`."""
    frame = pd.DataFrame([GOOD])
    json_header = {"Content-Type": "application/json"}
    good = json.dumps(client.request_body(protocol, frame)).encode()
    if kind in ENCODED:
        coding, body = ENCODED[kind](good)
        return "POST", body, {**json_header, "Content-Encoding": coding}
    frame = wrong_row(kind)
    if kind == "an unknown column":
        frame = frame.rename(columns={"age": "years"})
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

    isvc = kserve.inference_service(
        kserve.InferenceServiceSpec(
            model_name=SELDON, model_version=champion.version, model_uri=files, service_account="sa"
        )
    )
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


# -- the training file's own rows, and the same words for the same mistakes -----------------
INPUTS = ["age", "city", "signup", "score", "member"]
JSON = {"Content-Type": "application/json"}
LEFT_OUT = {"Order", "PID", "tier"}  # the row ids training dropped, and the target


def recorded(model: str, kind: str, request_id: str, timeout: float = 30.0) -> pd.DataFrame:
    """The rows the model's front recorded under `request_id`, once written (0.5 s here)."""
    folder = stack_folder(model)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = read_kind(folder, kind, None)
        if not frame.empty and request_id in set(frame["_request_id"]):
            return frame[frame["_request_id"] == request_id].reset_index(drop=True)
        time.sleep(0.2)
    raise AssertionError(f"{kind} of {request_id!r} not recorded in {folder}")


def test_the_training_files_own_rows_get_the_same_answers_everywhere_and_feedback_joins(
    served, tmp_path
):
    table = pd.read_csv(served["path"]).head(12)  # Order, PID, the features and tier
    assert LEFT_OUT < set(table.columns)
    expected = served["model"].predict(table[INPUTS]).tolist()
    mlflow_registry.configure_from_stack()
    champion = load_scoring_model(mlflow_registry.get_champion(SELDON))
    assert set(champion.passed_over) == LEFT_OUT  # recorded with the model at registration
    out = tmp_path / "scored.parquet"
    score_file(champion, served["path"], str(out))  # what `run.py predict --output` runs
    assert pd.read_parquet(out)["prediction"].tolist()[:12] == expected
    for protocol, model in (("seldon", SELDON), ("v2", V2)):
        answer = requests.post(served[protocol], json=client.request_body(protocol, table))
        assert answer.status_code == 200, (protocol, answer.text[:300])
        assert get_protocol(protocol).predictions(answer.json()) == expected, protocol
        if protocol == "seldon":
            request_id = answer.json()["meta"]["puid"]
            feedback = served[protocol].replace("/predictions", "/feedback")
            labels = {"response": answer.json(), "truth": {"data": {"ndarray": list(table.tier)}}}
        else:
            request_id = answer.json()["id"]
            feedback = served[protocol].replace("/infer", "/feedback")
            labels = {"id": request_id, "truth": list(table.tier)}
        assert requests.post(feedback, json=labels, timeout=30).status_code == 200
        rows = recorded(model, "requests", request_id)  # with the ids the client sent
        assert rows["PID"].tolist() == table["PID"].tolist(), protocol
        assert rows["Order"].tolist() == table["Order"].tolist(), protocol
        given = recorded(model, "feedback", request_id)[["_request_id", "_row", "_label"]]
        joined = rows.merge(given, on=["_request_id", "_row"])
        assert dict(zip(joined.PID, joined._label, strict=True)) == dict(
            zip(table.PID, table.tier, strict=True)
        )
        batch = traffic_batch(stack_folder(model), INPUTS, "tier", 3600, min_rows=len(table))
        assert batch.labelled_batch and batch.labelled >= len(table), protocol


@pytest.mark.parametrize("missing", ["null", "NaN", '""'])
def test_a_missing_text_value_means_the_same_on_both_protocols(served, missing):
    frame = pd.DataFrame([{**GOOD, "city": "GAP", "member": "GAP"}])
    expected = (
        served["model"].predict(in_process_frame([{**GOOD, "city": None, "member": None}])).tolist()
    )
    for protocol in ("seldon", "v2"):
        body = json.dumps(client.request_body(protocol, frame)).replace('"GAP"', missing)
        answer = requests.post(
            served[protocol], data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200, (protocol, answer.text[:300])
        assert get_protocol(protocol).predictions(answer.json()) == expected, protocol


def same_mistake(protocol: str, kind: str) -> str:
    """One mistake, made as a client of `protocol` makes it."""
    frame = wrong_row(kind)
    if kind == "an unknown column":
        frame["zz"] = [1]
    elif kind == "a misspelt id beside the ignored ones":
        frame = pd.DataFrame([{"Order": 1, "PID": "p1", **GOOD, "tier": "gold", "Ordr": 2}])
    body = client.request_body(protocol, frame)
    if kind == "a duplicate column":
        if protocol == "seldon":
            body["data"]["names"].append("age")
            body["data"]["ndarray"][0].append(31.0)
        else:
            body["inputs"].append({**body["inputs"][0], "data": [31.0]})
    elif kind == "a row of the wrong width":  # rows without names: a 2-D tensor on V2
        rows = [[1.0, 2.0, 3.0]]
        body = (
            {"data": {"ndarray": rows}}
            if protocol == "seldon"
            else {"inputs": [{"name": "rows", "shape": [1, 3], "datatype": "FP64", "data": rows}]}
        )
    elif kind == "one column of another name":
        body = (
            {"data": {"names": ["zz"], "ndarray": [[1.0]]}}
            if protocol == "seldon"
            else {"inputs": [{"name": "zz", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
        )
    elif kind == "an empty batch":
        if protocol == "seldon":
            body["data"]["ndarray"] = []
        else:
            body["inputs"] = [{**i, "shape": [0, 1], "data": []} for i in body["inputs"]]
    text = json.dumps(body)
    return text.replace("30.0", "Infinity", 1) if kind == "infinity" else text


MISTAKES = {  # the words that name each mistake (both protocols answer exactly alike)
    "an unknown column": "unknown column(s): zz. Expected columns: age, ",
    "a misspelt id beside the ignored ones": "unknown column(s): Ordr. Expected",
    "a missing column": "missing column(s): age. Expected columns",
    "a duplicate column": "duplicate column(s): age; send each column once",
    "text in a numeric column": "column 'age' expects numbers; row 0 has 'old'",
    "a numeric string": "column 'score' expects numbers; row 0 has '1.5'",
    "a number in a text column": "column 'city' expects text; row 0 has 7",
    "text in a true/false column": "column 'member' expects true/false; row 0 has 'yes'",
    "a row of the wrong width": "row 0 has 3 values but the model expects 5 (",
    "one column of another name": "unknown column(s): zz; missing column(s): age, city, ",
    "an empty batch": "the batch is empty: send at least one row",
    "infinity": "column 'age' row 0 is inf: send finite numbers",
}


def test_the_same_mistake_reads_the_same_on_both_protocols(served):
    table = {}
    for kind in MISTAKES:
        said = []
        for protocol in ("seldon", "v2"):
            answer = requests.post(
                served[protocol], data=same_mistake(protocol, kind), headers=JSON, timeout=30
            )
            assert answer.status_code == 400, (kind, protocol, answer.text[:300])
            said.append(
                answer.json()["status"]["info"] if protocol == "seldon" else answer.json()["error"]
            )
        table[kind] = said
    print("\n".join(f"{kind:42} {seldon}" for kind, (seldon, _) in table.items()))
    for kind, (seldon, v2) in table.items():
        assert seldon == v2, kind
        assert MISTAKES[kind] in seldon, (kind, seldon)
    assert "(also taken and ignored: tier, Order, PID)" in table["an unknown column"][0]


# -- a large Seldon batch as binData (an Arrow stream): the JSON path's answers and words ---
def as_bindata(frame: pd.DataFrame) -> dict:
    """The rows as zenkube's client sends a large Seldon batch (core/protocol/seldon.py)."""
    body = client.request_body("seldon", frame, binary_rows=1)
    assert set(body) == {"binData"}
    return body


def test_a_bindata_body_gets_the_json_answers_words_and_recorded_rows(served):
    table = pd.read_csv(served["path"]).head(12)  # with the row ids and the target: ignored
    answers = {}
    for form, body in (("json", client.request_body("seldon", table)), ("bin", as_bindata(table))):
        answer = requests.post(served["seldon"], json=body, timeout=30)
        assert answer.status_code == 200, (form, answer.text[:300])
        answers[form] = answer.json()
    expected = served["model"].predict(table[INPUTS]).tolist()
    assert [get_protocol("seldon").predictions(a) for a in answers.values()] == [expected] * 2
    json_rows, bin_rows = (
        recorded(SELDON, "requests", a["meta"]["puid"]) for a in answers.values()
    )
    differ = ["_request_id", "_time", "_latency_ms"]  # the request's own
    pd.testing.assert_frame_equal(
        json_rows.drop(columns=differ, errors="ignore"),
        bin_rows.drop(columns=differ, errors="ignore"),
    )
    for kind in [
        k
        for k in MISTAKES
        if k
        not in (
            "a row of the wrong width",
            "one column of another name",
            "an empty batch",
            "a duplicate column",
        )
    ]:
        sent = json.loads(same_mistake("seldon", kind).replace("Infinity", "1e999"))
        frame = pd.DataFrame(sent["data"]["ndarray"], columns=sent["data"]["names"])
        answer = requests.post(served["seldon"], json=as_bindata(frame), timeout=30)
        said = requests.post(served["seldon"], data=same_mistake("seldon", kind), headers=JSON)
        assert answer.status_code == 400, (kind, answer.text[:300])
        assert answer.json()["status"]["info"] == said.json()["status"]["info"], kind
    for data, reason in (("not base64!", "binData is not base64"), ("AAAA", "not an Arrow IPC")):
        answer = requests.post(served["seldon"], json={"binData": data}, timeout=30)
        assert answer.status_code == 400 and reason in answer.json()["status"]["info"], data


def test_run_py_predict_sends_a_large_batch_as_bindata_and_gets_the_same_answers(
    served, tmp_path, monkeypatch
):
    """`run.py predict --via-endpoint` (app/serving.py) on the local deployer: from
    client.BINARY_ROWS rows the batch goes as binData, and the answers are model.predict's."""
    from app import serving
    from core.protocol import seldon as codec

    table = pd.read_csv(served["path"])
    table = pd.concat([table] * (client.BINARY_ROWS // len(table) + 1), ignore_index=True)
    path = tmp_path / "big.csv"
    table.to_csv(path, index=False)  # with the row ids and the target: left out, as ever
    sent, encode = [], codec.encode_binary
    monkeypatch.setattr(codec, "encode_binary", lambda c: sent.append(c) or encode(c))
    predictions = serving.predict(str(path), "seldon", SELDON)
    assert len(sent) == 1 and len(next(iter(sent[0].values()))) == len(table)
    assert predictions == served["model"].predict(pd.read_csv(path)[INPUTS]).tolist()
