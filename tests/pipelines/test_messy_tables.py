"""Messy tables of our own, several models, and a gate that fails closed (real store + MLflow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from zenml.client import Client

from app import loop
from app import runner as runs
from core.errors import ConfigError, DataValidationError
from integrations.mlflow import champion as champions
from integrations.mlflow import registry as mlflow_registry
from tests.conftest import FAST_TRAINER
from tests.messy import messy_frame, write_csv


def train(name: str, path: str, target: str, **overrides):
    return runs.train(
        None,
        {
            "model_name": name,
            **FAST_TRAINER,
            "data.source": path,
            "data.target": target,
            **overrides,
        },
    )


def champion(name: str) -> str | None:
    mlflow_registry.configure_from_stack()
    found = mlflow_registry.get_champion(name)
    return found.version if found else None


def zenml_production(name: str) -> str:
    version = Client().get_model_version(name, "production")
    return str(version.run_metadata["mlflow_version"])


def root_error(error: BaseException) -> BaseException:
    while error.__cause__ is not None and not isinstance(error, ConfigError | DataValidationError):
        error = error.__cause__
    return error


@pytest.fixture(scope="module")
def tables(module_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    frame = messy_frame()
    width = np.random.default_rng(3).normal(size=240)
    noise = np.random.default_rng(5).normal(size=240)
    other = pd.DataFrame(
        {
            "width": width,
            "color": np.random.default_rng(4).choice(["a", "b"], 240),
            "price": width * 40 + 100 + noise * 5,
        }
    )
    # A target the features cannot explain: the regressor can only do worse than the mean.
    unrelated = other.assign(price=noise * 50 + 100)
    return {
        "prices": write_csv(frame, folder / "prices.csv", drop=("visits", "tier")),
        "visits": write_csv(frame, folder / "visits.csv", drop=("price", "tier")),
        "tiers": write_csv(frame, folder / "tiers.csv", drop=("price", "visits")),
        "other": write_csv(other, folder / "other.csv"),
        "unrelated": write_csv(unrelated, folder / "unrelated.csv"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def prices(tables):
    return train("prices", tables["prices"], "price")


def test_continuous_target_trains_a_regressor_with_defaults(prices):
    assert prices.decision.promoted and prices.decision.metric == "rmse"
    assert set(prices.metrics) == {"rmse", "mae", "r2"} and prices.metrics["r2"] > 0.5
    schema = prices.registered.input_schema
    assert schema.task == "regression" and schema.kinds["signup"] == "datetime"
    assert {c.name for c in schema.columns if c.nullable} == {"age", "city"}


def test_integer_target_with_many_values_is_regression(tables):
    result = train("visits", tables["visits"], "visits")
    assert result.registered.input_schema.task == "regression" and result.decision.promoted


def test_multiclass_text_labels_train_a_classifier_next_to_the_regressor(prices, tables):
    result = train("tiers", tables["tiers"], "tier", **{"gate.threshold": 0.3})
    # Three tiers: no positive class, so the gate's f1 is the mean over classes.
    assert result.decision.promoted and result.decision.metric == "f1_macro"
    mlflow_registry.configure_from_stack()
    model = mlflow_registry.load_model("models:/tiers@champion")
    assert set(model.predict(messy_frame().head(30))) <= {"bronze", "silver", "gold"}
    assert champion("prices") == prices.registered.version  # each name keeps its champion


def test_another_schema_under_the_same_name_never_becomes_champion(prices, tables):
    result = train("prices", tables["other"], "price")
    decision = result.decision
    assert not decision.promoted and decision.champion_status == "incomparable"
    assert "2 column(s) added: width, color" in decision.reason
    assert "removed: age, city, signup, score and 1 more" in decision.reason
    assert "--model-name NEW" in decision.reason
    assert champion("prices") == prices.registered.version
    assert zenml_production("prices") == prices.registered.version


def test_a_model_that_learned_nothing_never_becomes_the_first_champion(tables):
    result = train("unrelated", tables["unrelated"], "price")
    assert result.metrics["r2"] <= 0 and not result.decision.promoted
    assert "always predicting the mean of the labels" in result.decision.reason
    assert champion("unrelated") is None


def test_a_bundled_dataset_under_a_used_name_is_refused_too(prices):
    result = runs.train(None, {"model_name": "prices", **FAST_TRAINER, "data.source": "diabetes"})
    assert not result.decision.promoted and "target changed" in result.decision.reason
    assert champion("prices") == prices.registered.version


def test_schema_change_on_purpose_replaces_the_champion_loudly(tables):
    first = train("swap", tables["prices"], "price")
    second = train("swap", tables["other"], "price", **{"gate.allow_schema_change": True})
    assert second.decision.promoted and "REPLACES champion v" in second.decision.reason
    assert champion("swap") == second.registered.version != first.registered.version
    tags = mlflow_registry.version_tags("swap", second.registered.version)
    assert tags[mlflow_registry.SCHEMA_CHANGE_TAG] == "true"


def test_duplicated_header_fails_validation_and_keeps_the_champion(prices, tables):
    path = tables["folder"] / "dup.csv"
    text = open(tables["prices"]).read().splitlines()
    path.write_text("\n".join([text[0].replace("score", "age")] + text[1:]))
    with pytest.raises(Exception) as info:
        train("prices", str(path), "price")
    assert isinstance(root_error(info.value), DataValidationError)
    assert "duplicated column names: 'age'" in str(root_error(info.value))
    assert champion("prices") == prices.registered.version


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"trainer.class_path": "sklearn.ensemble.RandomForestClassifier"},
            "is a classification model but the target calls for regression",
        ),
        ({"gate.metric": "f1"}, "gate.metric 'f1' does not exist for regression"),
    ],
)
def test_a_config_that_cannot_work_is_refused_before_the_run(prices, tables, overrides, message):
    before = len(Client().list_pipeline_runs(size=100).items)
    with pytest.raises(ConfigError, match=message):
        train("prices", tables["prices"], "price", **overrides)
    assert len(Client().list_pipeline_runs(size=100).items) == before


def test_ctrl_c_while_scoring_the_champion_stops_the_run_and_keeps_the_champion(
    prices, tables, monkeypatch
):
    def interrupted(uri):
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow_registry, "load_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("prices", tables["prices"], "price", **{"split.seed": 7})
    assert champion("prices") == prices.registered.version
    assert zenml_production("prices") == prices.registered.version


def test_ctrl_c_between_alias_and_stage_puts_the_old_champion_back(prices, tables, monkeypatch):
    from zenml import Model

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Model, "set_stage", interrupted)
    # A better model (more boosting rounds, same rows) that the gate would promote.
    with pytest.raises(KeyboardInterrupt):
        train(
            "prices",
            tables["prices"],
            "price",
            **{
                "trainer.params": {"max_iter": 60, "random_state": 1},
                "gate.min_improvement": -1e9,
                "gate.min_rows": 1,  # promoted whatever the test rows: this is about Ctrl-C
            },
        )
    assert champion("prices") == prices.registered.version
    assert zenml_production("prices") == prices.registered.version


def test_rows_without_target_are_refused_with_a_count(tables, prices):
    frame = pd.read_csv(tables["prices"])
    frame.loc[:3, "price"] = np.nan
    path = write_csv(frame, tables["folder"] / "gaps.csv")
    with pytest.raises(Exception) as info:
        train("prices", path, "price")
    assert "has 4 empty values" in str(root_error(info.value))


def test_deploy_refuses_a_champion_of_another_schema_moved_by_hand(tables):
    from tests.serving.helpers import stop_all

    first = train("guarded", tables["prices"], "price")
    try:
        served = runs.deploy(None, {"model_name": "guarded"})
        other = train("guarded", tables["other"], "price")
        assert not other.decision.promoted
        # By hand, outside the gate (alias and stage together, as `run.py champion set` does).
        champions.set_by_hand("guarded", other.registered.version, "a test")
        with pytest.raises(ConfigError, match="takes other inputs than the served"):
            runs.deploy(None, {"model_name": "guarded"})
        (service,) = Client().active_stack.model_deployer.services_for("guarded")
        assert service.config.model_version == first.registered.version and service.is_running
        assert service.prediction_url == served.prediction_url
    finally:
        stop_all()


def test_a_champion_moved_in_one_record_only_stops_deploy_monitor_and_training(tables):
    first = train("split-brain", tables["prices"], "price")
    second = train(
        "split-brain", tables["prices"], "price", **{"gate.min_improvement": 1e9}
    )  # registered, not promoted
    assert not second.decision.promoted
    mlflow_registry.configure_from_stack()
    mlflow_registry.set_champion("split-brain", second.registered.version)  # the alias only
    expected = f"v{second.registered.version} in MLflow .* but v{first.registered.version} in ZenML"
    with pytest.raises(ConfigError, match=expected):
        runs.deploy(None, {"model_name": "split-brain"})
    with pytest.raises(ConfigError, match="one of them was moved by hand"):
        loop.batch_file("split-brain", simulate_drift=False)  # monitoring's reference
    with pytest.raises(Exception) as info:
        train("split-brain", tables["prices"], "price")
    assert "one of them was moved by hand" in str(root_error(info.value))
    assert zenml_production("split-brain") == first.registered.version  # nothing moved

    chosen = champions.set_by_hand("split-brain", first.registered.version, "a test")
    assert champion("split-brain") == zenml_production("split-brain") == chosen.version
    tags = mlflow_registry.version_tags("split-brain", chosen.version)
    assert tags[mlflow_registry.REASON_TAG] == "set by hand by a test (outside the gate)"
    with pytest.raises(ConfigError, match="has no MLflow version 99"):
        champions.set_by_hand("split-brain", "99", "a test")

    # The same disagreement left by a move this machine began and a kill -9 cut off (its
    # journal is still there) is put back to the last move that completed.
    mlflow_registry.set_champion("split-brain", second.registered.version)
    champions._begin_move("split-brain", chosen.version, second.registered.version)
    fixed = champions.repair("split-brain")
    assert "a move cut off halfway" in fixed[0]
    assert champion("split-brain") == zenml_production("split-brain") == chosen.version
    assert not champions.move_journal("split-brain").exists()
