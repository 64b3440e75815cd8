"""Validation collects every problem and names it; good data passes."""

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.specs import DataSpec
from materializers.dataset import Dataset
from steps.data.validate import check_dataset, find_data_problems


def good_frame(rows=60):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "color": rng.choice(["red", "blue"], size=rows),
            "label": np.arange(rows) % 2,
        }
    )


def problems(frame, spec=None, task="classification"):
    return find_data_problems(Dataset(frame=frame, target="label", task=task, name="t"), spec)


def test_good_data_has_no_problems():
    assert problems(good_frame()) == []


def test_missing_target_is_named():
    (problem,) = problems(good_frame().drop(columns="label"))
    assert "target column 'label' is missing" in problem


def test_unknown_feature_columns_are_named():
    found = problems(good_frame(), DataSpec(features=["x1", "nope"]))
    assert any("unknown feature columns" in p and "nope" in p for p in found)


def test_target_with_nan_is_reported():
    frame = good_frame()
    frame.loc[3, "label"] = np.nan
    assert any("1 empty values" in p for p in problems(frame))


def test_too_few_rows_is_reported():
    assert any("only 10 rows" in p for p in problems(good_frame(10)))


def test_single_class_is_reported():
    frame = good_frame()
    frame["label"] = 1
    assert any("single class" in p for p in problems(frame))


def test_all_empty_and_constant_columns_are_reported():
    frame = good_frame()
    frame["empty"] = np.nan
    frame["same"] = 7
    found = problems(frame)
    assert any("'empty' is entirely empty" in p for p in found)
    assert any("'same' is constant" in p for p in found)


def test_words_in_a_numeric_column_are_reported():
    frame = good_frame().astype({"x1": object})
    frame.loc[5, "x1"] = "oops"
    assert any("'x1' is numeric but has non-numeric values: ['oops']" in p for p in problems(frame))


def test_a_text_column_is_categorical_not_broken():
    assert problems(good_frame()) == []  # "color" is words only


def test_every_problem_is_in_one_error():
    frame = good_frame(10)
    frame["label"] = 1
    frame["same"] = 0
    with pytest.raises(DataValidationError) as info:
        check_dataset(Dataset(frame=frame, target="label", task="classification", name="bad"))
    message = str(info.value)
    assert "3 problem(s)" in message
    for part in ("only 10 rows", "single class", "'same' is constant"):
        assert part in message
