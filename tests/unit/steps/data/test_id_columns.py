"""Columns that identify rows are named and left out; messages show plain values."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from core.specs import DataSpec
from steps.data.load import load_dataset
from steps.data.validate import find_data_problems
from steps.monitoring.batch import check_batch


def houses(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "PID": rng.permutation(rows) * 7 + 526301100,  # unique whole numbers
            "Street": rng.choice(["Pave", "Grvl"], rows),
            "Area": rng.normal(1500, 300, rows).round(1),  # measurements: unique, not IDs
            "Rooms": rng.integers(2, 9, rows),
            "Price": rng.normal(180000, 30000, rows),
        }
    )


@pytest.fixture
def csv_with_index(tmp_path):
    path = tmp_path / "houses.csv"
    houses().to_csv(path)  # index=True: pandas writes its index as `Unnamed: 0`
    return str(path)


def test_id_like_columns_are_named_in_a_warning_and_left_out(csv_with_index, caplog):
    with caplog.at_level(logging.WARNING, logger="steps.data.load"):
        data = load_dataset(DataSpec(source=csv_with_index, target="Price"))
    assert list(data.schema) == ["Street", "Area", "Rooms"]
    assert data.ignored_columns == ["Unnamed: 0", "PID"]
    assert data.input_schema.ignored_columns == ["Unnamed: 0", "PID"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "'Unnamed: 0' (a pandas index written into the file)" in warning
    assert "'PID' (a different value in every row)" in warning
    assert "data.drop_id_columns: false" in warning


def test_id_columns_stay_when_asked_for(csv_with_index):
    kept = load_dataset(DataSpec(source=csv_with_index, target="Price", drop_id_columns=False))
    assert "PID" in kept.schema and "Unnamed: 0" in kept.schema and not kept.ignored_columns
    listed = load_dataset(
        DataSpec(source=csv_with_index, target="Price", features=["PID", "Area", "Rooms"])
    )
    assert list(listed.schema) == ["PID", "Area", "Rooms"]
    # the columns data.features leaves out are passed over like identifiers: the file's
    # own rows (and a monitoring batch of them) may still carry them
    assert listed.ignored_columns == ["Unnamed: 0", "Street"]
    assert listed.input_schema.ignored_columns == ["Unnamed: 0", "Street"]
    batch = check_batch(pd.read_csv(csv_with_index), listed, "new.csv")
    assert list(batch.features.columns) == ["PID", "Area", "Rooms"]


def test_a_monitoring_batch_may_still_carry_the_id_columns(csv_with_index):
    reference = load_dataset(DataSpec(source=csv_with_index, target="Price"))
    batch = check_batch(pd.read_csv(csv_with_index), reference, "new.csv")
    assert list(batch.features.columns) == ["Street", "Area", "Rooms"]
    assert batch.ignored_columns == ["Unnamed: 0", "PID"]


def test_messages_show_plain_values_not_numpy_reprs(tmp_path):
    frame = houses()
    frame["year"] = np.int64(2013)
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    problems = find_data_problems(load_dataset(DataSpec(source=str(path), target="Price")))
    assert "column 'year' is constant (2013)" in problems
    assert not any("np." in p for p in problems)


def test_a_numeric_column_with_a_stray_word_is_not_an_id_but_a_validation_problem(tmp_path):
    frame = houses()
    frame["Area"] = frame["Area"].astype(object)
    frame.loc[7, "Area"] = "n/a-ish"  # unique in every row, but a broken numeric column
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    data = load_dataset(DataSpec(source=str(path), target="Price"))
    assert "Area" in data.schema and data.ignored_columns == ["PID"]
    assert any(
        "'Area' is numeric but has non-numeric values" in p for p in find_data_problems(data)
    )


def test_the_training_summary_names_the_columns_left_out(csv_with_index):
    from app.render import left_out
    from integrations.mlflow.registry import RegisteredModel

    data = load_dataset(DataSpec(source=csv_with_index, target="Price"))
    registered = RegisteredModel(
        name="m", version="1", model_uri="", artifact_location="", input_schema=data.input_schema
    )
    assert left_out(registered).startswith(
        "Left out:     Unnamed: 0, PID: the model does not take them (they identify rows"
    )
    kept = registered.model_copy(update={"input_schema": None})
    assert left_out(kept) is None
    one = data.input_schema.model_copy(update={"ignored_columns": ["PID"]})
    line = left_out(registered.model_copy(update={"input_schema": one}))
    assert line.startswith("Left out:     PID: the model does not take it (it identifies rows")
    assert "them" not in line
