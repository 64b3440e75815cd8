"""Served == in-process: any row the model accepts gets model.predict's answer on both protocols.

Property-based rows (hypothesis) against the real Seldon and MLServer processes, on a
model with numbers, text, dates, a boolean, and missing values anywhere. Two model
names are served side by side, each on its own endpoint.
"""

from __future__ import annotations

import datetime as dt

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


@pytest.mark.parametrize("protocol", ["seldon", "v2"])
def test_a_wrong_type_is_400_on_both_protocols_and_names_the_column(served, protocol):
    bad = pd.DataFrame(
        {"age": [30.0], "score": [0.1], "city": [7], "signup": ["2024-01-01"], "member": [True]}
    )
    body = client.request_body(protocol, bad)
    response = requests.post(served[protocol], json=body, timeout=30)
    assert response.status_code == 400
    assert "column 'city' expects text; row 0 has 7" in response.text
