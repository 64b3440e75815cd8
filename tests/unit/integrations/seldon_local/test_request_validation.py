"""Request validation of the model servers (runs in their envs; plain numpy/pandas here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "integrations/seldon_local/runtime"))
from validation import (  # noqa: E402
    BadRequest,
    Column,
    _numeric_fast_path,
    columns_to_frame,
    named_columns_to_frame,
    one_warning_filter,
    predict_or_400,
    read_passed_over,
    rows_to_frame,
)

# The wire codecs the servers decode with (core/protocol/)
from core.protocol import seldon as seldon_codec  # noqa: E402
from core.protocol.seldon import decode_request as parse_seldon_request  # noqa: E402
from core.protocol.v2 import check_input as check_v2_input  # noqa: E402
from core.protocol.v2 import check_request as check_v2_request  # noqa: E402
from core.protocol.wire import tensor_shape  # noqa: E402

NUMERIC = [Column("a", True), Column("b", True)]
MIXED = [Column("a", True), Column("color", False)]


def test_numeric_rows_become_floats_in_model_order():
    frame = rows_to_frame([[2, 1.5], [3, 4]], ["b", "a"], NUMERIC)
    assert list(frame.columns) == ["a", "b"]
    assert frame.to_numpy().tolist() == [[1.5, 2.0], [4.0, 3.0]]


def test_fast_path_equals_a_plain_conversion():
    rows = np.random.default_rng(0).normal(size=(50, 2)).tolist()
    fast = _numeric_fast_path(rows, ["a", "b"], 2)
    assert fast is not None and fast.equals(pd.DataFrame(rows, columns=["a", "b"]).astype(float))
    assert _numeric_fast_path([["1.5", 2.0]], ["a", "b"], 2) is None  # text goes the strict way
    mixed = rows_to_frame([[1.0, "red"]], None, MIXED)
    assert mixed.iloc[0].tolist() == [1.0, "red"]


@pytest.mark.parametrize(
    "rows,names,schema,reason",
    [
        ([["1.5", 2.0]], None, NUMERIC, "column 'a' expects numbers; row 0 has '1.5'"),
        ([[float("inf"), 2.0]], None, NUMERIC, "send finite numbers"),
        ([[10**400, 2.0]], None, NUMERIC, "too large for a number"),
        ([[1.0, "x" * 500]], None, NUMERIC, "row 0 has 'xxxxxxx"),
        ([[1.0]], None, NUMERIC, "row 0 has 1 values but the model expects 2"),
        ([[1.0, 2.0], [1.0]], None, NUMERIC, "row 1 has 1 values"),
        ([], None, NUMERIC, "the batch is empty"),
        ([[1.0, 2.0]], ["a", "zz"], NUMERIC, "unknown column(s): zz; missing column(s): b"),
        ([[1.0, 3]], None, MIXED, "column 'color' expects text; row 0 has 3"),
        ([1.0, 2.0], None, NUMERIC, "row 0 is not a list"),
    ],
)
def test_bad_rows_are_refused_with_a_reason(rows, names, schema, reason):
    with pytest.raises(BadRequest) as info:
        rows_to_frame(rows, names, schema)
    assert reason in str(info.value)


def test_missing_values_are_accepted_as_nan_in_every_kind_of_column():
    frame = rows_to_frame([[None, None], [float("nan"), "red"]], None, MIXED)
    assert frame["a"].isna().all() and frame["color"].isna().tolist() == [True, False]
    fast = rows_to_frame([[float("nan"), 1.0]], None, NUMERIC)
    assert np.isnan(fast.iloc[0, 0]) and fast.iloc[0, 1] == 1.0


def test_long_bad_values_are_quoted_as_a_short_prefix():
    with pytest.raises(BadRequest) as info:
        rows_to_frame([[1.0, 3.5]], None, MIXED)
    assert "expects text; row 0 has 3.5" in str(info.value)
    with pytest.raises(BadRequest) as info:
        rows_to_frame([["y" * 10_000, 1.0]], None, NUMERIC)
    assert len(str(info.value)) < 200
    with pytest.raises(BadRequest, match="unknown column") as info:  # a 1 MB name
        rows_to_frame([[1.0, 2.0]], ["n" * 2**20, "b"], NUMERIC)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "message,reason",
    [
        ({"inputs": [{"name": "a", "shape": ["1"], "data": [1]}]}, "shape must be a list of int"),
        ({"inputs": [{"name": "a", "shape": [True], "data": [1]}]}, "shape must be a list of int"),
        ({"inputs": [{"name": "a", "shape": [1], "data": None}]}, "data is null"),
        ({"id": "i" * 2**20, "inputs": []}, '"id" must be text of at most 256'),
        ({"id": 7, "inputs": []}, '"id" must be text'),
    ],
)
def test_v2_requests_are_checked_as_sent_before_the_schema_coerces_them(message, reason):
    with pytest.raises(BadRequest, match=reason) as info:
        check_v2_request(message)
    assert len(str(info.value)) < 200


def test_a_v2_request_as_sent_that_is_fine_passes():
    check_v2_request({"id": "r1", "inputs": [{"name": "a", "shape": [1, 1], "data": [1.0]}]})


def test_booleans_in_numeric_columns_are_one_and_zero_on_both_paths():
    fast = rows_to_frame([[True, 2.0]], None, NUMERIC)
    slow = rows_to_frame([[True, None]], None, NUMERIC)
    assert fast.iloc[0, 0] == 1.0 and slow.iloc[0, 0] == 1.0


def test_boolean_columns_take_true_false():
    schema = [Column("a", True), Column("flag", False, boolean=True)]
    assert rows_to_frame([[1.0, True]], None, schema).iloc[0].tolist() == [1.0, True]
    with pytest.raises(BadRequest, match="expects true/false"):
        rows_to_frame([[1.0, "yes"]], None, schema)


def test_seldon_message_forms():
    assert parse_seldon_request({"data": {"ndarray": [[1, 2]], "names": ["a", "b"]}}) == (
        [[1, 2]],
        ["a", "b"],
    )
    rows, _ = parse_seldon_request({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}})
    assert np.asarray(rows).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    for message, reason in [
        ({}, 'missing "data"'),
        ([1], "JSON object"),
        ({"data": {}}, '"ndarray"'),
    ]:
        with pytest.raises(BadRequest, match=reason):
            parse_seldon_request(message)


@pytest.mark.parametrize(
    "shape,count,reason",
    [
        ([-1, 2], 2, "negative dimension"),
        ([1.5, 2], 3, "two integers"),
        ([True, 2], 2, "two integers"),
        ([1, 1, 2], 2, "two integers"),
        ([2, 2], 3, "needs 4 values; 3 were sent"),
        ([16_000_000, 0], 0, "rows in one request"),  # refused before anything is allocated
        ([0, 5], 0, "the batch is empty"),
    ],
)
def test_tensor_shapes_are_checked_before_allocation(shape, count, reason):
    with pytest.raises(BadRequest, match=reason):
        tensor_shape(shape, count, "data.tensor")


def test_tensor_shape_returns_rows_and_columns():
    assert tensor_shape([3, 2], 6, "t") == (3, 2)


@pytest.mark.parametrize(
    "datatype,shape,values,reason",
    [
        ("BOOL", [1], [0.5], "BOOL, which holds true/false"),
        ("FP64", [1], [True], "FP64, which holds numbers"),
        ("FP32", [1], ["1.5"], "FP32, which holds numbers"),
        ("INT8", [1], [300], "INT8, which holds integers from -128 to 127"),
        ("UINT8", [1], [-1], "UINT8, which holds integers from 0 to 255"),
        ("INT64", [1], [1.5], "INT64, which holds integers"),
        ("BYTES", [1], [3], "BYTES, which holds text"),
        ("FP64", [5, 1], [1.0], "shape \\[5, 1\\] does not match its 1 values"),
        ("FP64", [-1], [1.0], "negative dimension"),
        ("FP64", [1.0], [1.0], "list of integers"),
    ],
)
def test_v2_inputs_must_match_their_shape_and_datatype(datatype, shape, values, reason):
    with pytest.raises(BadRequest, match=reason):
        check_v2_input("a", datatype, shape, values)


def test_v2_inputs_that_match_pass_and_null_is_missing_in_any_datatype():
    for datatype, values in [
        ("BOOL", [True, None]),
        ("FP64", [1, 2.5]),
        ("INT64", [2**63 - 1, None]),
        ("BYTES", ["x", None]),
        ("BYTES", ["", float("nan")]),  # as on Seldon: NaN is missing in a text input too
        ("INT64", [1, float("nan")]),
    ]:
        check_v2_input("a", datatype, [2, 1], values)


def test_a_v2_input_the_model_ignores_is_checked_for_shape_only():
    check_v2_input("Order", "BYTES", [2, 1], [1562, 7], data=False)
    with pytest.raises(BadRequest, match="does not match its 1 values"):
        check_v2_input("Order", "BYTES", [2, 1], [1562], data=False)


IGNORED = ("tier", "Order", "PID")  # the target and the row ids training left out


@pytest.mark.parametrize(
    "rows,names",
    [
        ([[1.0, 2.0, 7, "x-1"]], ["a", "b", "Order", "PID"]),  # text extra: the slow path
        ([[3, 1.0, 2.0]], ["Order", "a", "b"]),  # numeric extra: the fast path
        ([["gold", 1.0, 2.0]], ["tier", "a", "b"]),
    ],
)
def test_columns_the_model_left_out_at_training_are_taken_and_ignored(rows, names):
    frame = rows_to_frame(rows, names, NUMERIC, IGNORED)
    assert list(frame.columns) == ["a", "b"]
    assert frame.to_numpy().tolist() == [[1.0, 2.0]]


def test_other_extra_columns_are_refused_with_the_expected_ones():
    with pytest.raises(BadRequest) as info:
        rows_to_frame([[1.0, 2.0, 5]], ["a", "b", "zz"], NUMERIC, IGNORED)
    assert str(info.value) == (
        "unknown column(s): zz. Expected columns: a, b (also taken and ignored: tier, Order, PID)"
    )
    with pytest.raises(BadRequest, match="unknown column\(s\): Order"):
        rows_to_frame([[1.0, 2.0, 5]], ["a", "b", "Order"], NUMERIC)  # a model without a record
    with pytest.raises(BadRequest, match="row 0 has 2 values but 3 columns are named"):
        rows_to_frame([[1.0, 2.0]], ["a", "b", "Order"], NUMERIC, IGNORED)
    with pytest.raises(BadRequest, match="duplicate column\(s\): a; send each column once"):
        rows_to_frame([[1.0, 2.0, 3.0]], ["a", "b", "a"], NUMERIC)


def test_empty_text_is_missing_in_text_and_boolean_columns_but_not_in_numeric_ones():
    schema = [Column("a", True), Column("color", False), Column("flag", False, boolean=True)]
    frame = rows_to_frame([[1.0, "", ""], [2.0, float("nan"), None]], None, schema)
    assert frame[["color", "flag"]].isna().all().all()
    with pytest.raises(BadRequest, match="column 'a' expects numbers; row 0 has ''"):
        rows_to_frame([["", "red", True]], None, schema)


def test_the_columns_a_model_left_out_come_from_its_recorded_schema(tmp_path):
    import json

    import yaml

    signature = {"inputs": json.dumps([{"name": "a", "type": "double"}])}
    (tmp_path / "MLmodel").write_text(yaml.safe_dump({"signature": signature}))
    assert read_passed_over(str(tmp_path)) == ()  # a model without zenkube's record
    recorded = {"target": "tier", "ignored_columns": ["Order", "PID", "a"], "columns": []}
    (tmp_path / "MLmodel").write_text(
        yaml.safe_dump({"signature": signature, "metadata": {"zenkube_input_schema": recorded}})
    )
    assert read_passed_over(str(tmp_path)) == ("tier", "Order", "PID")  # never an input


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_value_a_forest_cannot_hold_is_named_by_column_and_row():
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]})
    tree = DecisionTreeClassifier().fit(frame, [0, 1])
    big = pd.DataFrame({"a": [0.5, 0.5], "b": [1.0, 1e39]})  # fine in float64, not float32
    with pytest.raises(BadRequest, match="column 'b' row 1 is beyond the float32 range"):
        predict_or_400(tree, big)


def test_the_server_keeps_one_warning_filter_and_a_forest_answers_the_same():
    import warnings

    from sklearn.ensemble import RandomForestClassifier

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=list("abc"))
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(frame, frame["a"] > 0)
    before = forest.predict(frame)
    with warnings.catch_warnings():
        for k in range(40):  # what a server's imports leave behind
            warnings.filterwarnings("ignore", message=f"noise {k}")
        one_warning_filter()
        assert len(warnings.filters) == 1 and warnings.filters[0][0] == "default"
        np.testing.assert_array_equal(forest.predict(frame), before)
        assert len(warnings.filters) == 1  # sklearn's per-tree filter dance restores it


def test_v2_columns_become_the_same_frame_as_the_same_rows():
    """V2 builds the frame from its columns (no rows in between): the frame, and the
    reason for a bad value, are those of the same values sent as Seldon rows."""
    rows = [[1, "red"], [None, ""], [2.5, None], [True, "blue"]]
    columns = {"a": [r[0] for r in rows], "color": [r[1] for r in rows]}
    assert columns_to_frame(columns, MIXED).equals(rows_to_frame(rows, ["a", "color"], MIXED))
    numbers = np.random.default_rng(1).normal(size=(20, 2))
    by_column = {"b": numbers[:, 1].tolist(), "a": numbers[:, 0].tolist()}
    assert columns_to_frame(by_column, NUMERIC).equals(
        rows_to_frame(numbers.tolist(), ["a", "b"], NUMERIC)
    )
    for bad in ("1.5", float("inf"), 2**1100):
        values = {"a": [1.0, bad], "b": [1.0, 2.0]}
        with pytest.raises(BadRequest) as by_column:
            columns_to_frame(values, NUMERIC)
        with pytest.raises(BadRequest) as by_row:
            rows_to_frame([[1.0, 1.0], [bad, 2.0]], ["a", "b"], NUMERIC)
        assert str(by_column.value) == str(by_row.value)
    with pytest.raises(BadRequest, match="the batch is empty"):
        columns_to_frame({"a": [], "b": []}, NUMERIC)


BOTH = [Column("a", True), Column("color", False), Column("flag", False, boolean=True)]


def as_bindata(rows: list[list], names: list[str]) -> tuple[dict, list]:
    """The rows as the client sends a large batch (binData), decoded as the server does."""
    body = seldon_codec.encode_binary({n: [r[i] for r in rows] for i, n in enumerate(names)})
    return parse_seldon_request(body)


@pytest.mark.parametrize(
    "rows,names",
    [
        ([[1, "red", True], [None, "", None], [2.5, None, False]], ["a", "color", "flag"]),
        ([["x", 3, 1.0, 7, "gold", False]], ["color", "Order", "a", "PID", "tier", "flag"]),
        ([[float("nan"), "blue", True]], ["a", "color", "flag"]),
    ],
)
def test_bindata_columns_become_the_same_frame_as_the_same_rows(rows, names):
    columns, sent = as_bindata(rows, names)
    assert named_columns_to_frame(columns, sent, BOTH, IGNORED).equals(
        rows_to_frame(rows, names, BOTH, IGNORED)
    )


@pytest.mark.parametrize(
    "rows,names",
    [
        ([[1.0, "red", True, 5]], ["a", "color", "flag", "zz"]),  # an unknown column
        ([[1.0, "red"]], ["a", "color"]),  # a missing one
        ([["old", "red", True]], ["a", "color", "flag"]),  # text in a numeric column
        ([["1.5", "red", True]], ["a", "color", "flag"]),  # a numeric string
        ([[1.0, 7, True]], ["a", "color", "flag"]),  # a number in a text column
        ([[1.0, "red", "yes"]], ["a", "color", "flag"]),  # text in a true/false column
        ([[1.0, "red", 1]], ["a", "color", "flag"]),  # a number in a true/false column
        ([[float("inf"), "red", True]], ["a", "color", "flag"]),
    ],
)
def test_bindata_gets_the_same_words_as_json_rows_for_the_same_mistake(rows, names):
    columns, sent = as_bindata(rows, names)
    with pytest.raises(BadRequest) as by_column:
        named_columns_to_frame(columns, sent, BOTH, IGNORED)
    with pytest.raises(BadRequest) as by_row:
        rows_to_frame(rows, names, BOTH, IGNORED)
    assert str(by_column.value) == str(by_row.value)
