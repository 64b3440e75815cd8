"""The training pipeline on a real ZenML store and MLflow registry (one scenario, in order)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from app import runner as runs
from core.errors import DataValidationError
from integrations.mlflow import registry as mlflow_registry
from tests.conftest import FAST_TRAINER

MODEL = "test-model"


def train(**overrides):
    return runs.train(None, {"model_name": MODEL, **FAST_TRAINER, **overrides})


@pytest.fixture(scope="module")
def first_run(module_store):
    return train()


def champion_version():
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.get_champion(MODEL)
    return champion.version if champion else None


def test_first_run_is_promoted_and_logged_to_mlflow(first_run):
    assert first_run.decision.promoted
    assert first_run.registered.model_uri.startswith("models:/m-")
    mlflow_registry.configure_from_stack()
    run = mlflow.get_run(first_run.registered.run_id)
    assert (
        run.data.params["trainer.class_path"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    )
    assert run.data.metrics["test_f1"] == pytest.approx(first_run.metrics["f1"])


def test_champion_loads_from_registry_and_predicts_like_the_trained_model(first_run):
    from zenml.client import Client

    run = Client().get_pipeline_run(first_run.run_name)
    trained = run.steps["train_model"].outputs["model"][0].load()
    test = run.steps["split_data"].outputs["test_set"][0].load()
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.load_model(f"models:/{MODEL}@champion")
    np.testing.assert_array_equal(champion.predict(test.features), trained.predict(test.features))


def test_zenml_model_version_is_in_production(first_run):
    from zenml.client import Client

    version = Client().get_model_version(MODEL, "production")
    assert version.run_metadata["mlflow_version"] == first_run.registered.version


def test_worse_model_is_not_promoted(first_run):
    worse = train(
        **{
            "trainer.class_path": "sklearn.tree.DecisionTreeClassifier",
            "trainer.params": {"max_depth": 1, "random_state": 0},
            "gate.threshold": 0.0,
        }
    )
    assert not worse.decision.promoted and "the champion stays" in worse.decision.reason
    # Compared paired on the same test rows: worse with confidence, or not shown better.
    assert worse.decision.outcome in ("keep", "inconclusive") and worse.decision.interval
    assert worse.registered.version != first_run.registered.version
    assert champion_version() == first_run.registered.version


def test_a_model_that_ignores_its_inputs_is_refused_even_without_threshold(first_run):
    dummy = train(
        **{
            "trainer.class_path": "sklearn.dummy.DummyClassifier",
            "trainer.params": {"strategy": "most_frequent"},
            "gate.threshold": 0.0,
        }
    )
    assert not dummy.decision.promoted
    assert "always predicting the most frequent class" in dummy.decision.reason
    assert champion_version() == first_run.registered.version


def _nan_in_target(frame: pd.DataFrame) -> pd.DataFrame:
    frame["y"] = frame["y"].astype(float)
    frame.loc[4, "y"] = np.nan
    return frame


def _text_in_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    frame["a"] = frame["a"].astype(object)
    frame.loc[7, "a"] = "n/a-ish"
    return frame


BAD_DATASETS = {  # kind: (what is done to a good dataset, what the refusal says)
    "missing_target": (lambda frame: frame.drop(columns="y"), "target column 'y' is missing"),
    "target_nan": (_nan_in_target, "empty values"),
    "too_few_rows": (lambda frame: frame.head(5), "only 5 rows"),
    "single_class": (lambda frame: frame.assign(y=1), "single class"),
    "empty_column": (lambda frame: frame.assign(e=np.nan), "'e' is entirely empty"),
    "constant_column": (lambda frame: frame.assign(c=3), "'c' is constant"),
    "non_numeric": (_text_in_numeric, "'a' is numeric but has non-numeric values"),
}


def bad_csv(tmp_path, kind: str) -> tuple[str, str]:
    rng = np.random.default_rng(1)
    rows = 80
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "y": np.arange(rows) % 2,
        }
    )
    spoil, reason = BAD_DATASETS[kind]
    path = tmp_path / f"{kind}.csv"
    spoil(frame).to_csv(path, index=False)
    return str(path), reason


@pytest.mark.parametrize("kind", BAD_DATASETS)
def test_bad_dataset_fails_at_validation_and_keeps_the_champion(first_run, tmp_path, kind):
    path, reason = bad_csv(tmp_path, kind)
    with pytest.raises(Exception) as info:
        train(**{"data.source": path, "data.target": "y", "data.task": "classification"})
    error = info.value
    while not isinstance(error, DataValidationError) and error.__cause__ is not None:
        error = error.__cause__
    assert isinstance(error, DataValidationError), info.value
    assert reason in str(error)
    assert champion_version() == first_run.registered.version


def test_unknown_feature_in_config_fails_at_validation(first_run):
    with pytest.raises(Exception) as info:
        train(**{"data.features": ["mean radius", "not a column"]})
    assert "unknown feature columns in config: not a column" in str(info.value)
