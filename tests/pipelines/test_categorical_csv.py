"""A CSV with a categorical column trains, and the registered model takes raw rows."""

import numpy as np
import pandas as pd

from app import runner as runs
from integrations.mlflow import registry as mlflow_registry
from tests.conftest import FAST_TRAINER


def test_csv_with_categorical_column_trains_and_predicts_on_raw_rows(zenml_store, tmp_path):
    rng = np.random.default_rng(0)
    rows = 300
    color = rng.choice(["red", "green", "blue"], size=rows)
    size = rng.normal(size=rows)
    frame = pd.DataFrame(
        {"color": color, "size": size, "label": np.where(color == "red", "yes", "no")}
    )
    frame.loc[::17, "size"] = np.nan  # imputation is part of the model
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)

    result = runs.train(
        None,
        {
            "model_name": "shop",
            **FAST_TRAINER,
            "data.source": str(path),
            "data.target": "label",
            "gate.threshold": 0.5,
        },
    )
    assert result.decision.promoted
    mlflow_registry.configure_from_stack()
    model = mlflow_registry.load_model("models:/shop@champion")
    raw = pd.DataFrame({"color": ["red", "blue", "green"], "size": [0.1, np.nan, 2.0]})
    assert list(model.predict(raw)) == ["yes", "no", "no"]
