"""Any tabular data: column kinds, the schema contract, task rules and the model on raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, DataValidationError
from core.schema import DATETIME, InputSchema, SchemaColumn, diff_schemas, infer_kinds
from core.specs import GateSpec, TrainerSpec
from materializers.dataset import Dataset
from steps.data.load import infer_task, read_table
from steps.data.validate import find_data_problems
from steps.training.train import build_model, check_config_for_task, config_problems
from tests.messy import messy_frame, write_csv


def test_column_kinds_recognise_dates_text_numbers_and_bools():
    kinds = infer_kinds(messy_frame(), target="tier")
    assert kinds["signup"] == DATETIME and kinds["city"] == "categorical"
    assert kinds["age"] == "numeric" and kinds["member"] == "categorical"
    words = pd.Series(["May", "June", "today", None])
    codes = pd.Series(["0012", "0007", "0100"])
    assert infer_kinds(pd.DataFrame({"w": words, "c": codes}), None) == {
        "w": "categorical",
        "c": "categorical",
    }


def test_schema_diff_names_added_removed_retyped_with_counts():
    old = InputSchema(
        columns=[SchemaColumn(name=f"c{i}", kind="numeric") for i in range(8)],
        target="y",
        task="classification",
    )
    new = InputSchema(
        columns=[SchemaColumn(name="c0", kind="categorical")]
        + [SchemaColumn(name=f"n{i}", kind="numeric") for i in range(6)],
        target="z",
        task="classification",
    )
    text = diff_schemas(old, new).describe()
    assert "6 column(s) added: n0, n1, n2, n3 and 2 more" in text
    assert "7 column(s) removed" in text and "c0 (numeric → categorical)" in text
    assert "target changed from 'y' to 'z'" in text
    # order and nullability are not a schema change
    same = InputSchema(columns=list(reversed(old.columns)), target="y", task="classification")
    same.columns[0] = same.columns[0].model_copy(update={"nullable": True})
    assert not diff_schemas(old, same)


def test_task_decides_the_default_estimator_and_metric():
    assert TrainerSpec().for_task("regression")[0].endswith("HistGradientBoostingRegressor")
    assert TrainerSpec().for_task("classification")[0].endswith("HistGradientBoostingClassifier")
    per_task = TrainerSpec(class_path={"regression": "sklearn.linear_model.Ridge"}, params={})
    assert per_task.for_task("regression") == ("sklearn.linear_model.Ridge", {})
    assert per_task.for_task("classification")[0].endswith("HistGradientBoostingClassifier")
    assert config_problems(TrainerSpec(), GateSpec(), "regression") == []


def test_a_config_that_cannot_work_is_one_message():
    trainer = TrainerSpec(class_path="sklearn.ensemble.RandomForestClassifier")
    with pytest.raises(ConfigError) as info:
        check_config_for_task(trainer, GateSpec(metric="f1"), "regression")
    text = str(info.value)
    assert "is a classification model but the target calls for regression" in text
    assert "gate.metric 'f1' does not exist for regression" in text


def test_integer_targets_with_many_values_are_regression():
    assert infer_task(pd.Series(np.arange(200) % 97)) == "regression"
    assert infer_task(pd.Series([1.0, 2.0, np.nan, 3.0] * 10)) == "classification"


def test_duplicated_header_is_refused_by_name(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a,c,c\n1,2,3,4,5\n")
    with pytest.raises(DataValidationError, match="duplicated column names: 'a', 'c'"):
        read_table(str(path))


def test_empty_and_binary_files_get_a_clear_error(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="is empty"):
        read_table(str(empty))
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        read_table(str(binary))


def test_rare_classes_are_named_before_the_split_fails():
    frame = messy_frame()
    frame.loc[:1, "tier"] = "platinum"
    data = Dataset(
        frame=frame.drop(columns=["price", "visits"]), target="tier", task="classification"
    )
    problems = " ".join(find_data_problems(data))
    assert "fewer than 5 rows ('platinum' (2))" in problems


def test_the_model_takes_raw_rows_with_gaps_dates_and_unseen_categories(tmp_path):
    frame = messy_frame().drop(columns=["visits", "tier"])
    data = Dataset(
        frame=pd.read_csv(write_csv(frame, tmp_path / "m.csv")), target="price", task="regression"
    )
    model = build_model(data.schema, "sklearn.linear_model.Ridge", {})
    model.fit(data.features, data.labels)
    odd = pd.DataFrame(
        {
            "score": [0.1, np.nan],
            "signup": ["2023-05-01", None],
            "age": [30, np.nan],  # ints where floats were trained
            "member": [True, np.nan],
            "city": ["Atlantis", np.nan],  # unseen category, missing category
        }
    )
    predicted = model.predict(odd[list(data.schema)])
    assert np.isfinite(predicted).all()
    later = odd.assign(signup=["2023-06-01", None])
    assert model.predict(later[list(data.schema)])[0] != predicted[0]  # dates matter
