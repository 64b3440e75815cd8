"""`predict` (to the endpoint) sends a model its inputs, even from a copy of the training table."""

from __future__ import annotations

import pandas as pd

from app.serving import not_inputs_dropped
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
