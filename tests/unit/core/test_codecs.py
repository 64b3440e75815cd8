"""The wire codecs (core/protocol/): what a client encodes, a server decodes to the same
rows; every V2 datatype the runtime accepts round-trips; a bad body gets its one reason."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import math
import random
import re

import numpy as np
import pytest

from core.protocol import seldon, v2, wire
from core.protocol.wire import BadRequest

COLUMNS = ["age", "color", "member"]
ROWS = [[31, "red", True], [None, "", False], [2.5, None, None]]


def test_seldon_request_round_trips_through_json():
    body = json.loads(json.dumps(seldon.encode_request(COLUMNS, ROWS)))
    rows, names = seldon.decode_request(body)
    assert names == COLUMNS and rows == ROWS


def test_seldon_request_sends_nan_as_null():
    body = seldon.encode_request(["a"], [[float("nan")], [1.0]])
    assert json.dumps(body, allow_nan=False)  # strict JSON
    assert seldon.decode_request(body)[0] == [[None], [1.0]]


def test_seldon_tensor_decodes_to_floats_of_its_shape_and_null_is_nan():
    rows, names = seldon.decode_request(
        {"data": {"tensor": {"shape": [2, 2], "values": [1, 2.5, None, 4]}}}
    )
    assert names is None and rows.shape == (2, 2) and rows.dtype == np.float64
    assert rows[0].tolist() == [1.0, 2.5] and math.isnan(rows[1, 0])


@pytest.mark.parametrize(
    "values, reason",
    [
        ([1, "2", 3, 4], "value 1 is '2': send text columns with ndarray"),
        ([1, True, 3, 4], "value 1 is True"),
        ([1, [2], 3, 4], "value 1 is [2]"),
    ],
)
def test_seldon_tensor_refuses_anything_but_numbers_and_names_the_value(values, reason):
    with pytest.raises(BadRequest, match=reason.replace("[", r"\[").replace("]", r"\]")):
        seldon.decode_request({"data": {"tensor": {"shape": [2, 2], "values": values}}})


def test_seldon_answer_round_trips_and_carries_the_puid():
    answer = json.loads(wire.dumps(seldon.encode_response(np.array([0, 1, 1]), "p1", "iris")))
    assert seldon.decode_response(answer) == ("p1", [0, 1, 1])
    assert seldon.answered_rows(answer) == 3
    assert answer["meta"]["requestPath"] == {"classifier": "zenkube/iris"}
    assert seldon.decode_response(seldon.with_puid(answer, "p2"))[0] == "p2"


def test_seldon_feedback_names_the_puid_of_its_response_or_request():
    truth = {"data": {"ndarray": [1, 0]}}
    assert seldon.decode_feedback({"response": {"meta": {"puid": "a"}}, "truth": truth}) == (
        "a",
        [1, 0],
    )
    assert seldon.decode_feedback({"request": {"meta": {"puid": "b"}}, "truth": truth})[0] == "b"
    assert seldon.decode_feedback({"truth": truth})[0] is None
    assert seldon.feedback_answer("a") == {
        "data": {"names": [], "ndarray": []},
        "meta": {"puid": "a"},
    }


def test_v2_request_round_trips_through_json_one_input_per_column():
    body = json.loads(json.dumps(v2.encode_request(COLUMNS, ROWS)))
    assert [(i["name"], i["datatype"], i["shape"]) for i in body["inputs"]] == [
        ("age", "FP64", [3, 1]),
        ("color", "BYTES", [3, 1]),
        ("member", "BOOL", [3, 1]),
    ]
    columns, names = v2.decode_inputs(body, COLUMNS)
    assert names == COLUMNS
    assert [columns[n] for n in COLUMNS] == [list(c) for c in zip(*ROWS, strict=True)]


def test_v2_one_2d_input_of_unnamed_columns_comes_back_as_rows():
    message = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    assert v2.decode_inputs(message, ["a", "b"]) == ([[1, 2], [3, 4]], None)


def test_v2_nested_data_is_flattened_row_major():
    message = {"inputs": [{"name": "a", "shape": [2, 1], "datatype": "INT64", "data": [[1], [2]]}]}
    assert v2.decode_inputs(message, ["a"]) == ({"a": [1, 2]}, ["a"])


def test_v2_names_are_checked_before_values_and_ignored_inputs_are_not_read():
    message = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
            {"name": "target", "shape": [1], "datatype": "FP64", "data": ["not a number"]},
        ]
    }
    seen = []

    def check_names(names, expected, passed_over):
        seen.append(names)
        return ["target"]

    columns, names = v2.decode_inputs(message, ["a"], ("target",), check_names)
    assert seen == [["a", "target"]] and columns == {"a": [1.0]} and names == ["a", "target"]
    with pytest.raises(BadRequest, match="input 'target' is FP64, which holds numbers"):
        v2.decode_inputs(message, ["a", "target"])


# Every datatype the runtime accepts: values that fit, one that does not, and its words.
DATATYPES = {
    "BOOL": ([True, False, None, ""], 1, "true/false"),
    "INT8": ([-128, 127, None, float("nan")], 128, "integers from -128 to 127"),
    "INT16": ([-(2**15), 2**15 - 1, None], 2**15, "integers from -32768 to 32767"),
    "INT32": ([-(2**31), 2**31 - 1], 2**31, "integers from -2147483648 to 2147483647"),
    "INT64": ([-(2**63), 2**63 - 1], 2**63, f"integers from {-(2**63)} to {2**63 - 1}"),
    "UINT8": ([0, 255, None], -1, "integers from 0 to 255"),
    "UINT16": ([0, 2**16 - 1], 2**16, "integers from 0 to 65535"),
    "UINT32": ([0, 2**32 - 1], 1.5, "integers from 0 to 4294967295"),
    "UINT64": ([0, 2**64 - 1], True, f"integers from 0 to {2**64 - 1}"),
    "FP16": ([1.5, 2, None, float("nan")], "1.5", "numbers"),
    "FP32": ([1.5, -2, 1e30], True, "numbers"),
    "FP64": ([1.5, 2, None], [1], "numbers"),
    "BYTES": (["a", "", None, float("nan")], 7, "text"),
}


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_datatype_takes_its_values_and_refuses_another_by_name(datatype):
    good, bad, wanted = DATATYPES[datatype]
    assert datatype in v2.DATATYPES
    v2.check_input("a", datatype, [len(good), 1], good)
    message = {"inputs": [{"name": "a", "shape": [len(good)], "datatype": datatype, "data": good}]}
    assert v2.decode_inputs(message, ["a"])[0]["a"] == good
    values = [*good, bad]
    with pytest.raises(BadRequest) as refused:
        v2.check_input("a", datatype, [len(values)], values)
    assert str(refused.value) == (
        f"input 'a' is {datatype}, which holds {wanted}; value {len(good)} is {bad!r}"
    )


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_the_one_pass_check_agrees_with_the_value_by_value_one(datatype):
    """`_types_fit` is a shortcut: whenever it passes a column, naming its first bad
    value must find none (random columns of mixed JSON values)."""
    pool = [0, 1, -1, 255, 2**40, 2**64, -(2**63) - 1, 1.5, float("nan"), None, True, False,
            "", "x", "1"]  # fmt: skip
    generator = random.Random(datatype)
    for _ in range(300):
        values = generator.choices(pool, k=generator.randint(1, 4))
        if v2._types_fit(datatype, values):
            v2._refuse_value("input 'a'", datatype, values)  # must not raise


@pytest.mark.parametrize(
    "predictions, datatype, data",
    [
        (np.array([0, 1]), "INT64", [0, 1]),
        (np.array([0, 1], dtype=np.int32), "INT32", [0, 1]),
        (np.array([1, 2], dtype=np.uint8), "UINT8", [1, 2]),
        (np.array([0.5, 1.0]), "FP64", [0.5, 1.0]),
        (np.array([0.5], dtype=np.float32), "FP32", [0.5]),
        (np.array([True, False]), "BOOL", [True, False]),
        (np.array(["yes", "no"]), "BYTES", ["yes", "no"]),
        (np.array(["yes", 1], dtype=object), "BYTES", ["yes", "1"]),
    ],
)
def test_v2_answer_round_trips_every_prediction_type(predictions, datatype, data):
    output = v2.encode_output(predictions)
    assert output["datatype"] == datatype and output["shape"] == [len(data), 1]
    answer = json.loads(wire.dumps({"id": "r1", "outputs": [output]}))
    assert v2.decode_response(answer) == ("r1", data)
    assert v2.answered_rows(answer) == len(data)


@pytest.mark.parametrize(
    "message, reason",
    [
        ({"inputs": []}, '"inputs" is empty: send one input per column'),
        (
            {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
            "input 'a': shape [2] does not match its 1 values",
        ),
        (
            {"inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]},
            "input 'a' has shape [1, 2]: a column is [rows] or [rows, 1]",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
                    {"name": "b", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                ]
            },
            "inputs have different lengths: {'a': 1, 'b': 2}",
        ),
        (
            {
                "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}],
                "outputs": [{"name": "proba"}],
            },
            "unknown output 'proba': this model has 'predictions'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1.0]}]},
            "input 'x': shape [2, 2] does not match its 1 values",
        ),
    ],
)
def test_bad_v2_bodies_get_one_reason(message, reason):
    with pytest.raises(BadRequest) as refused:
        v2.decode_inputs(message, ["a", "b"])
    assert str(refused.value) == reason


@pytest.mark.parametrize(
    "message, reason",
    [
        ([1, 2], 'the body must be a JSON object like {"data": {"ndarray": [[...]]}}'),
        ({"meta": {}}, 'missing "data": send {"data": {"names": [...], "ndarray": [[...], ...]}}'),
        ({"data": [1]}, '"data" must be an object with "ndarray" or "tensor"'),
        ({"data": {"rows": []}}, '"data" needs "ndarray" (rows) or "tensor" (shape + values)'),
        ({"data": {"tensor": {"values": []}}}, 'data.tensor needs "shape" ([rows, columns])'),
        ({"data": {"tensor": {"shape": [1, 1], "values": 3}}}, "data.tensor.values must be"),
    ],
)
def test_bad_seldon_bodies_get_one_reason(message, reason):
    with pytest.raises(BadRequest) as refused:
        seldon.decode_request(message)
    assert str(refused.value).startswith(reason)


def test_wire_json_reads_nan_and_infinity_and_refuses_what_is_not_json():
    value = wire.loads(b'{"a": [NaN, Infinity, 1]}')
    assert math.isnan(value["a"][0]) and value["a"][1] == float("inf")
    with pytest.raises(ValueError):
        wire.loads(b"{not json")
    assert json.loads(wire.dumps({"a": np.array([1, 2]), "b": np.float64(0.5)})) == {
        "a": [1, 2],
        "b": 0.5,
    }


def test_parsing_pauses_the_cycle_collector_and_leaves_it_as_it_found_it(monkeypatch):
    seen = []
    real = wire.orjson.loads if wire.orjson else json.loads
    monkeypatch.setattr(wire, "orjson", None)  # the stdlib parser: the same pause
    monkeypatch.setattr(wire.json, "loads", lambda body: seen.append(gc.isenabled()) or real(body))
    assert gc.isenabled()
    assert wire.loads(b"[[1, 2], [3, 4]]") == [[1, 2], [3, 4]]
    with pytest.raises(ValueError):
        wire.loads(b"{not json")
    assert gc.isenabled() and seen == [False, False]  # paused while parsing, then back on
    gc.disable()
    try:
        wire.loads(b"[1]")
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()


def test_flat_keeps_a_flat_list_and_flattens_nested_row_major():
    values = [1, 2]
    assert wire.flat(values) is values
    assert wire.flat([[1, [2, 3]], [4]]) == [1, 2, 3, 4]


def test_reward_only_feedback_and_a_v2_request_id():
    assert seldon.reward_only({"reward": 1, "response": {}})
    assert not seldon.reward_only({"reward": 1, "truth": {"data": {"ndarray": [1]}}})
    assert not seldon.reward_only({"data": {}}) and not seldon.reward_only([1])
    assert v2.request_id({"id": "r1"}) == "r1" and v2.request_id({"id": 7}) == "7"
    assert v2.request_id({"id": ""}) is None and v2.request_id({"id": [1]}) is None
    assert v2.request_id([1]) is None


# -- Seldon binData: an Arrow IPC stream, one column per input -----------------------------
def arrow_stream(table, **options) -> str:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        w.write_table(table)
    return base64.b64encode(sink.getvalue()).decode()


def test_seldon_bindata_round_trips_numbers_text_and_true_false_with_nulls():
    columns = {
        "age": [31, None, 2],
        "score": np.array([1.5, np.nan, -2.0]),
        "color": ["red", "", None],
        "member": [True, False, None],
    }
    body = json.loads(json.dumps(seldon.encode_binary(columns)))  # strict JSON: base64 text
    assert set(body) == {"binData"}
    decoded, names = seldon.decode_request(body)
    assert names == list(columns)
    assert decoded["age"].dtype == np.float64 and decoded["age"][0] == 31  # null: NaN
    assert math.isnan(decoded["age"][1]) and math.isnan(decoded["score"][1])
    assert decoded["score"].tolist()[::2] == [1.5, -2.0]
    assert decoded["color"] == ["red", "", None] and decoded["member"] == [True, False, None]
    whole = seldon.decode_request(seldon.encode_binary({"n": [1, 2, 3]}))[0]["n"]
    assert whole.dtype.kind == "i" and whole.tolist() == [1, 2, 3]  # ints stay ints


def test_seldon_bindata_encoder_refuses_a_column_of_mixed_types():
    with pytest.raises(ValueError, match="'a' is not one Arrow type"):
        seldon.encode_binary({"a": [1, "x"]})


def test_seldon_bindata_keeps_duplicate_names_for_the_name_check():
    import pyarrow as pa

    table = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["a", "a"])
    assert seldon.decode_request({"binData": arrow_stream(table)})[1] == ["a", "a"]


def test_bad_seldon_bindata_gets_one_reason_before_anything_is_read(monkeypatch):
    import pyarrow as pa

    table = pa.table({"a": pa.array([1.0] * 100), "s": pa.array(["x"] * 100)})
    good = arrow_stream(table)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    file_format = base64.b64encode(sink.getvalue()).decode()
    raw = base64.b64decode(good)
    cases = {
        "not base64!": "binData is not base64",
        base64.b64encode(b"{}" * 50).decode(): "binData is not an Arrow IPC stream (",
        base64.b64encode(raw[: len(raw) // 2]).decode(): "binData is not an Arrow IPC stream (",
        file_format: "binData holds an Arrow file, not a stream",
        arrow_stream(table, compression="zstd"): "binData holds compressed Arrow buffers",
        arrow_stream(pa.table({"a": pa.array([], pa.float64())})): "the batch is empty",
        arrow_stream(pa.table({"d": pa.array([dt.date(2024, 1, 1)])})): (
            "binData column 'd' is of Arrow type date32[day]: send numbers (integers or floats)"
        ),
        arrow_stream(pa.table({"l": pa.array([[1.0]])})): "binData column 'l' is of Arrow type",
    }
    for data, reason in cases.items():
        with pytest.raises(BadRequest) as refused:
            seldon.decode_request({"binData": data})
        assert str(refused.value).startswith(reason), (reason, str(refused.value))
        assert "\n" not in str(refused.value)
    for message, reason in [
        ({"binData": 7}, "binData must be base64 text; got 7"),
        ({"binData": good, "data": {"ndarray": [[1]]}}, 'send either "data" or "binData"'),
    ]:
        with pytest.raises(BadRequest, match=re.escape(reason)):
            seldon.decode_request(message)
    monkeypatch.setattr(seldon, "MAX_ROWS", 99)  # the row cap, before anything is converted
    with pytest.raises(BadRequest, match="100 rows in one request; the limit is 99"):
        seldon.decode_request({"binData": good})


def test_seldon_bindata_of_random_bytes_is_always_a_bad_request():
    import pyarrow as pa

    raw = bytearray(base64.b64decode(arrow_stream(pa.table({"a": [1.0, 2.0], "s": ["x", "y"]}))))
    rng = random.Random(7)
    for _ in range(300):  # flipped bytes in a real stream: refused, never a crash
        broken = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        try:
            seldon.decode_request({"binData": base64.b64encode(bytes(broken)).decode()})
        except BadRequest:
            pass


def test_seldon_bindata_refuses_dictionary_columns_and_the_encoder_sends_their_values():
    """A dictionary-encoded column would be copied value by value on the server (one long
    value and many small indexes: megabytes of body, gigabytes of memory): refused; a
    pandas categorical is sent as its values, decoded as plain text."""
    import pandas as pd
    import pyarrow as pa

    indexes = pa.array([0] * 1000, pa.int8())
    hostile = pa.DictionaryArray.from_arrays(indexes, pa.array(["x" * 1000]))
    with pytest.raises(BadRequest, match="binData column 'c' is of Arrow type dictionary"):
        seldon.decode_request({"binData": arrow_stream(pa.table({"c": hostile}))})
    body = seldon.encode_binary({"c": pd.Series(["a", "b", None, "a"], dtype="category")})
    assert seldon.decode_request(body)[0]["c"] == ["a", "b", None, "a"]


def test_seldon_bindata_converts_only_the_columns_the_check_keeps():
    """The name check runs on the names before any column is read: a body declaring many
    empty columns (no bytes each) is refused without converting them, and only the
    columns `keep` names are converted."""
    import pyarrow as pa

    table = pa.table({f"n{i}": pa.nulls(100_000) for i in range(50)} | {"a": [1.0] * 100_000})
    body = {"binData": arrow_stream(table)}
    read: list[list] = []

    def refuse(names):
        read.append(names)
        raise BadRequest("unknown column(s): n0, ...")

    with pytest.raises(BadRequest, match="unknown column"):
        seldon.decode_request(body, refuse)
    assert len(read[0]) == 51
    columns, names = seldon.decode_request(body, lambda names: ["a"])
    assert list(columns) == ["a"] and len(names) == 51 and columns["a"].sum() == 100_000


def test_seldon_bindata_encoder_leaves_integers_beyond_int64_to_json_rows():
    with pytest.raises(ValueError, match="'big' is not one Arrow type"):
        seldon.encode_binary({"big": np.array([2**70, 1], dtype=object)})
