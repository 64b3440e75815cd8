"""Served == what the pipeline measured: the endpoint answers the rows the pipeline itself
evaluated on (read back from its artifacts, where a text gap is `None`) exactly as the
pipeline scored them, so the metric the gate reported is the metric of what is served.

The table is our own: text gaps that matter (the rows without an island are mostly one
species), and column names MLflow would refuse as metric keys (`bill length (mm)`), which
training, serving and monitoring all take.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from zenml.client import Client

from app import loop
from app import runner as runs
from integrations.mlflow import registry as mlflow_registry
from integrations.seldon_local import client
from steps.training.metrics import prediction_metrics
from tests.conftest import FAST_TRAINER
from tests.serving.helpers import deploy_folder, stop_all, trained_on

MODEL = "gappy-penguins"
V2_MODEL = "gappy-penguins-v2"
ISLANDS = {"Biscoe": "Gentoo", "Dream": "Chinstrap", "Torgersen": "Adelie"}


def penguins(rows: int, seed: int) -> pd.DataFrame:
    """Island decides the species; a fifth of the islands are missing, and those rows are
    mostly Adelie, while the most frequent island is Biscoe (Gentoo)."""
    rng = np.random.default_rng(seed)
    island = rng.choice(list(ISLANDS), rows, p=[0.5, 0.25, 0.25]).astype(object)
    species = np.array([ISLANDS[i] for i in island], dtype=object)
    gap = rng.random(rows) < 0.2
    island[gap] = None
    species[gap] = np.where(rng.random(gap.sum()) < 0.85, "Adelie", "Chinstrap")
    frame = pd.DataFrame(
        {
            "island": island,
            "bill length (mm)": np.round(rng.normal(44, 5, rows), 1),
            "sex?": rng.choice(["male", "female", None], rows, p=[0.45, 0.45, 0.1]),
            "species": species,
        }
    )
    frame.loc[rng.random(rows) < 0.05, "bill length (mm)"] = np.nan
    return frame


@pytest.fixture(scope="module")
def served(module_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("penguins")
    path = folder / "penguins.csv"
    trained = trained_on(MODEL, penguins(600, seed=0), path, "species", {"gate.threshold": 0.3})
    seldon = runs.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    deployer = Client().active_stack.model_deployer
    v2 = deploy_folder(V2_MODEL, deployer.services_for(MODEL)[0].model_dir, "1", protocol="v2")
    run = Client().get_pipeline_run(trained.run_name)
    test = run.steps["split_data"].outputs["test_set"][0].load()
    model = run.steps["train_model"].outputs["model"][0].load()
    yield {
        "trained": trained,
        "test": test,
        "model": model,
        "urls": {"seldon": seldon.prediction_url, "v2": v2.prediction_url},
        "folder": folder,
    }
    stop_all()


def test_the_endpoint_answers_the_pipelines_own_test_rows_as_the_pipeline_scored_them(served):
    test, model, trained = served["test"], served["model"], served["trained"]
    assert test.frame["island"].isna().any()  # the artifact holds the text gaps...
    assert any(v is None for v in test.frame["island"])  # ...as Parquet gives them: None
    pipeline_answers = model.predict(test.features).tolist()  # what evaluate_model scored
    for protocol, url in served["urls"].items():
        served_answers = client.predict(url, protocol, test.features)
        assert served_answers == pipeline_answers, protocol
        served_metrics = prediction_metrics(test.task, test.labels, served_answers)
        metric = trained.decision.metric
        assert served_metrics[metric] == trained.decision.candidate_score, protocol
        assert served_metrics[metric] == trained.metrics[metric], protocol


def test_none_nan_and_empty_text_are_one_missing_value_inside_the_model(served):
    rows = served["test"].features.head(8).copy()
    rows["island"] = None
    as_nan, as_empty = rows.copy(), rows.copy()
    as_nan["island"] = np.nan
    as_empty["island"] = ""
    model = served["model"]
    expected = model.predict(rows).tolist()
    assert model.predict(as_nan).tolist() == expected == model.predict(as_empty).tolist()
    assert client.predict(served["urls"]["seldon"], "seldon", as_empty) == expected


def test_a_model_with_column_names_mlflow_refuses_as_keys_is_monitored(served):
    batch = penguins(200, seed=7)
    batch["bill length (mm)"] += 8  # drifted: an alert, a retraining and a gate decision
    path = served["folder"] / "batch.csv"
    batch.to_csv(path, index=False)
    result = loop.monitor(
        None,
        {"model_name": MODEL, "batch": str(path)},
        training_overrides=FAST_TRAINER,
        redeploy=False,
        echo=lambda *_: None,
    )
    assert "bill length (mm)" in result.drift.drifted_columns and result.decision.alert
    assert result.retraining is not None and result.retraining.decision.reason
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    mlflow = MlflowClient()
    runs = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    (logged,) = [r for r in runs if r.data.tags.get("column.000") == "bill length (mm)"]
    assert logged.data.metrics["p_value.000_bill_length_mm"] < 0.05  # in sorted order
    assert logged.data.tags["column.002"] == "sex?" and "p_value.002_sex" in logged.data.metrics
