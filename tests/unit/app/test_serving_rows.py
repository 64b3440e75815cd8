"""`predict` (to the endpoint) sends a model its inputs, even from a copy of the training table."""

from __future__ import annotations

import pandas as pd
import pytest

from app.serving import not_inputs_dropped, read_rows, refuse_no_rows
from core.errors import ConfigError
from core.schema import InputSchema, SchemaColumn


def schema() -> InputSchema:
    return InputSchema(
        columns=[
            SchemaColumn(name="age", kind="numeric"),
            SchemaColumn(name="city", kind="categorical"),
        ],
        target="churned",
        task="classification",
        ignored_columns=["customer_id"],
    )


def test_the_label_and_row_ids_are_left_out_and_named():
    rows = pd.DataFrame({"customer_id": [7], "age": [30], "city": ["Oslo"], "churned": [1]})
    sent, dropped = not_inputs_dropped(rows, schema())
    assert list(sent.columns) == ["age", "city"]
    assert dropped == ["churned", "customer_id"]


def test_other_unknown_columns_still_reach_the_server_to_be_refused_there():
    rows = pd.DataFrame({"age": [30], "city": ["Oslo"], "years": [3]})
    sent, dropped = not_inputs_dropped(rows, schema())
    assert list(sent.columns) == ["age", "city", "years"] and dropped == []


def test_without_a_schema_the_rows_go_as_they_are():
    rows = pd.DataFrame({"age": [30], "churned": [1]})
    sent, dropped = not_inputs_dropped(rows, None)
    assert sent is rows and dropped == []


@pytest.mark.parametrize(
    "name,content,says",
    [
        ("empty.csv", "", "empty.csv is empty: it has no header row and no rows to score. Give "
         "a CSV whose first line is a header row of the model's columns (age, city)"),
        ("header.csv", "age,city\n", "header.csv has a header row but no rows to score under it"),
        ("rows.json", "[]", "rows.json has no rows to score. Give a list of row objects (or "
         "{columns, data}) with the model's columns (age, city)"),
    ],
)  # fmt: skip
def test_a_file_with_no_rows_is_refused_before_any_request(tmp_path, name, content, says):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        refuse_no_rows(read_rows(str(path)), str(path), schema())
    assert says in str(raised.value) and "No columns to parse" not in str(raised.value)


def test_without_the_models_schema_the_refusal_still_says_what_to_give(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match="a header row of the model's columns, then one row"):
        refuse_no_rows(read_rows(str(tmp_path / "empty.csv")), "empty.csv", None)
    refuse_no_rows(pd.DataFrame({"age": [30]}), "one-row.csv", None)  # a row: nothing said
