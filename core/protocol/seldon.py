"""The Seldon Core v1 codec: `{"data": {"names": [...], "ndarray": [[...], ...]}}`,
`{"data": {"tensor": {"shape": [rows, columns], "values": [...]}}}` or, for a large
batch, `{"binData": "<base64 of an Apache Arrow IPC stream>"}` (Seldon's own field for
bytes: seldon-core 1.18 `utils.extract_request_parts_json` base64-decodes it; a model
with `predict_raw`, as zenkube's runtime has, gets the message as sent,
`seldon_methods.predict`), answered with
`{"data": {"names": [], "ndarray": [...]}, "meta": {"puid": ...}}`; feedback is
`{"response": {"meta": {"puid": ...}}, "truth": {"data": {"ndarray": [...]}}}`.

The Arrow stream carries one column per input, named and typed in its schema (numbers,
true/false, text; null is missing): the server reads 300,000 numbers as 30 arrays
instead of parsing 300,000 JSON floats (docs/performance.md §16).

One reader and one writer of each message, used by the client, the front and its
recorder, the Seldon runtime and the traffic sink (core/protocol/__init__.py).
Standard library and numpy (imported when a tensor is read) only; pyarrow is imported
when a binData body is read or written (the front imports this module and answers
within a second).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

from core.protocol.wire import MAX_ROWS, BadRequest, short, tensor_shape

PREDICT_PATH = "/api/v1.0/predictions"
FEEDBACK_EXAMPLE = (
    '{"response": {"meta": {"puid": "<puid of the prediction>"}}, '
    '"truth": {"data": {"ndarray": [label, ...]}}}'
)


def encode_request(columns: list[str], rows: list[list]) -> dict:
    """A request for these rows (JSON values); NaN (not valid JSON) is sent as null."""
    return {"data": {"names": list(columns), "ndarray": [_no_nan(row) for row in rows]}}


def _no_nan(row: list) -> list:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in row]


def decode_request(message, keep=None) -> tuple[list, list | None]:
    """(rows, names) of a request: `data.ndarray` as sent (a list of rows), or
    `data.tensor` as a float numpy array of its shape (null → NaN), or `binData` as a dict
    of columns by name (`decode_binary`, which reads only the columns `keep` names);
    BadRequest says what is wrong with any other body. `names` is None when the client
    sent none."""
    if not isinstance(message, dict):
        raise BadRequest('the body must be a JSON object like {"data": {"ndarray": [[...]]}}')
    data = message.get("data")
    if "binData" in message:
        if data is not None:
            raise BadRequest('send either "data" or "binData", not both')
        return decode_binary(message["binData"], keep)
    if data is None:
        raise BadRequest(
            'missing "data": send {"data": {"names": [...], "ndarray": [[...], ...]}} '
            '(or {"binData": "<base64 of an Arrow IPC stream>"})'
        )
    if not isinstance(data, dict):
        raise BadRequest('"data" must be an object with "ndarray" or "tensor"')
    names = data.get("names") or None
    if "ndarray" in data:
        return data["ndarray"], names
    if "tensor" in data:
        tensor = data["tensor"]
        if not isinstance(tensor, dict) or "shape" not in tensor or "values" not in tensor:
            raise BadRequest('data.tensor needs "shape" ([rows, columns]) and "values"')
        values = tensor["values"]
        if not isinstance(values, list):
            raise BadRequest("data.tensor.values must be a flat list of numbers")
        rows, width = tensor_shape(tensor["shape"], len(values), "data.tensor")
        return tensor_values(values).reshape(rows, width), names
    raise BadRequest('"data" needs "ndarray" (rows) or "tensor" (shape + values)')


def tensor_values(values: list):
    """A tensor's flat values as a float64 array (null → NaN); numbers only."""
    import numpy as np  # here: the front imports this module and answers within a second

    if set(map(type, values)) <= {int, float, type(None)}:  # one pass at C speed
        try:
            return np.array(values, dtype=float)
        except OverflowError:  # an integer beyond float64: refused as before, below
            pass
    for i, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest(
                f"data.tensor.values holds only numbers (null for missing); value {i} is "
                f"{short(value)}: send text columns with ndarray"
            )
    return np.array([np.nan if v is None else v for v in values], dtype=float)


# -- binData: one Arrow IPC stream, a column per input ------------------------------------
BINARY_HOW = (
    "write the columns with pyarrow.ipc.new_stream (the stream format, uncompressed; one "
    "column per input: numbers, true/false or text, null for missing) and send its bytes "
    'base64-encoded as {"binData": "..."}'
)


def encode_binary(columns: dict) -> dict:
    """A request for these columns (name → a list, numpy array or pandas Series; None or
    NaN is missing) as `binData`. ValueError when a column is not one of numbers,
    true/false or text (mixed types, dates): send such rows with `encode_request`."""
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        try:
            array = pa.array(values, from_pandas=True)  # NaN → null
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValueError(f"column {name!r} is not one Arrow type: {exc}") from None
        if pa.types.is_dictionary(array.type):  # pandas' categoricals: sent as their values
            array = array.cast(array.type.value_type)
        if _kind(array.type) is None:
            raise ValueError(f"column {name!r} is {array.type}: not numbers, true/false or text")
        arrays[str(name)] = array
    table = pa.table(arrays)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {"binData": base64.b64encode(sink.getvalue()).decode("ascii")}


def decode_binary(data, keep=None) -> tuple[dict, list]:
    """(columns by name, their names as sent) of a `binData` body: numeric columns as
    numpy arrays (null → NaN), true/false and text as lists (null → None), checked as a
    JSON body's rows are by the caller (names, types). BadRequest says what is wrong: not
    base64, not an uncompressed Arrow IPC stream, over the row cap, a column of another
    type (dictionary-encoded ones too: their values would be copied once per row).
    Nothing is decompressed or converted before the row count is checked, and with
    `keep` (names as sent → the names to read, raising BadRequest for a wrong set: the
    runtime's check of the model's columns) only those columns are converted, so a
    body's work is bounded by the model's width, not by how many columns it declares."""
    if not isinstance(data, str):
        raise BadRequest(f"binData must be base64 text; got {short(data)}: {BINARY_HOW}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            f"binData is not base64 (standard alphabet, padded, no line breaks): {BINARY_HOW}"
        ) from None
    import pyarrow as pa

    if raw[:6] == b"ARROW1":
        raise BadRequest(f"binData holds an Arrow file, not a stream: {BINARY_HOW}")
    try:
        if any(_compressed(m.metadata) for m in pa.ipc.MessageReader.open_stream(raw)):
            raise BadRequest(f"binData holds compressed Arrow buffers: {BINARY_HOW}")
        table = pa.ipc.open_stream(raw).read_all()
        if table.num_rows > MAX_ROWS:
            raise BadRequest(f"{table.num_rows} rows in one request; the limit is {MAX_ROWS}")
        table.validate(full=True)
    except (pa.ArrowException, OSError, struct.error, ValueError, IndexError) as exc:
        if isinstance(exc, BadRequest):
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise BadRequest(f"binData is not an Arrow IPC stream ({reason}): {BINARY_HOW}") from None
    if table.num_rows == 0:
        raise BadRequest("the batch is empty: send at least one row")
    kinds = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kinds[name] = _kind(column.type)
        if kinds[name] is None:
            raise BadRequest(
                f"binData column {short(name)} is of Arrow type {column.type}: send numbers "
                "(integers or floats), true/false or text (dates as ISO text), one value per "
                "cell, not dictionary-encoded"
            )
    names = table.column_names
    wanted = set(names if keep is None else keep(names))
    columns = {}
    for name, column in zip(names, table.columns, strict=True):
        if name in wanted:
            columns[name] = column.to_numpy() if kinds[name] == "number" else column.to_pylist()
    return columns, names


def _kind(arrow_type) -> str | None:
    """number, bool, text or null for the Arrow types a column may have; None otherwise."""
    import pyarrow.types as t

    if t.is_integer(arrow_type) or t.is_floating(arrow_type):
        return "number"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return "text"
    return "null" if t.is_null(arrow_type) else None


def _compressed(metadata) -> bool:
    """Whether one IPC message declares compressed buffers, read from its flatbuffer
    header before any buffer is touched (a small zstd body can hold gigabytes). Arrow's
    format/Message.fbs: Message.header_type is field 1 and header field 2; the header is a
    RecordBatch (type 3: `compression` is field 3) or a DictionaryBatch (type 2: its
    `data`, field 1, is a RecordBatch). ValueError/struct.error when malformed."""
    buf = memoryview(metadata)

    def read(fmt: str, at: int) -> int:
        if at < 0:
            raise ValueError("a flatbuffer offset points before the message")
        return struct.unpack_from(fmt, buf, at)[0]

    def table(at: int) -> tuple[int, int]:  # (the table, its vtable)
        return at, at - read("<i", at)

    def field(tbl: tuple[int, int], index: int) -> int | None:
        at, vtable = tbl
        slot = 4 + 2 * index
        offset = read("<H", vtable + slot) if slot < read("<H", vtable) else 0
        return at + offset if offset else None

    def child(tbl: tuple[int, int], index: int) -> tuple[int, int] | None:
        at = field(tbl, index)
        return None if at is None else table(at + read("<I", at))

    message = table(read("<I", 0))
    kind_at = field(message, 1)
    kind = read("<B", kind_at) if kind_at is not None else 0
    header = child(message, 2) if kind in (2, 3) else None
    if header is not None and kind == 2:
        header = child(header, 1)
    return header is not None and field(header, 3) is not None


def encode_response(predictions, puid: str, model_name: str) -> dict:
    """The answer to a prediction: one prediction per row, the request's puid."""
    values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    return {
        "data": {"names": [], "ndarray": values},
        "meta": {"puid": puid, "requestPath": {"classifier": f"zenkube/{model_name}"}},
    }


def request_puid(message) -> str:
    """The puid a request carried in `meta.puid` ("" when none)."""
    meta = message.get("meta") if isinstance(message, dict) else None
    return str((meta or {}).get("puid") or "") if isinstance(meta, dict) else ""


def decode_response(answer) -> tuple[str, list]:
    """(puid, one prediction per row) of an answer; KeyError/TypeError when it is none."""
    values = answer["data"]["ndarray"]
    if not isinstance(values, list):
        raise TypeError("data.ndarray is not a list")
    return str((answer.get("meta") or {}).get("puid") or ""), values


def answered_rows(answer) -> int:
    """How many rows an answer scored."""
    return len(answer["data"]["ndarray"])


def with_puid(answer: dict, puid: str) -> dict:
    """The answer with `meta.puid` set (the request id its caller was given)."""
    meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
    return {**answer, "meta": {**meta, "puid": puid}}


def feedback_ids(message: dict) -> list:
    """The puids a feedback message names (its response's, then its request's)."""
    return [
        ((message.get(part) or {}).get("meta") or {}).get("puid")
        for part in ("response", "request")
    ]


def decode_feedback(message: dict) -> tuple[object, object]:
    """(the prediction's puid, the true labels) of a feedback message; None for either
    when absent (the caller says what is missing, with FEEDBACK_EXAMPLE)."""
    request_id = next((i for i in feedback_ids(message) if i), None)
    truth = ((message.get("truth") or {}).get("data") or {}).get("ndarray")
    return request_id, truth


def reward_only(message) -> bool:
    """Feedback that brings no labels, only a reward for earlier answers
    (SeldonClient.microservice_feedback sends no truth)."""
    return (
        isinstance(message, dict)
        and "truth" not in message
        and bool({"reward", "request", "response"} & message.keys())
    )


def feedback_answer(puid: str) -> dict:
    """What Seldon answers to feedback: an empty message naming the prediction."""
    return {"data": {"names": [], "ndarray": []}, "meta": {"puid": puid}}
