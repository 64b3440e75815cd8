"""The Open Inference Protocol (V2) codec: a request is `{"inputs": [{"name", "shape",
"datatype", "data"}, ...]}` (one input per column, or one 2-D input of rows), an answer
`{"id", "model_name", "outputs": [{"name": "predictions", "shape", "datatype", "data"}]}`;
zenkube's feedback is `{"id": "<the answer's id>", "truth": [label, ...]}`.

One reader and one writer of each message, used by the client, the front and its
recorder, the MLServer runtime and the traffic sink (core/protocol/__init__.py). A
column's values are checked against its datatype in one pass over their types and turned
into one numpy array (the per-value loop runs only to word a refusal). Standard library
and numpy (imported to encode an answer) only.
"""

from __future__ import annotations

from core.protocol.wire import (
    MAX_ROWS,
    BadRequest,
    flat,
    is_missing,
    is_missing_text,
    short,
    tensor_shape,
)

PREDICT_PATH = "/v2/models/{model}/infer"
OUTPUT = "predictions"
MAX_ID_CHARS = 256
FEEDBACK_EXAMPLE = '{"id": "<the id of the infer response>", "truth": [label, ...]}'

INT_RANGES = {
    **{f"INT{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    **{f"UINT{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
}
FLOATS = ("FP16", "FP32", "FP64")
DATATYPES = ("BOOL", *INT_RANGES, *FLOATS, "BYTES")
_NONE = type(None)


# -- requests ---------------------------------------------------------------------------
def datatype_of(values: list) -> str:
    """The datatype a client sends a column of JSON values as: BYTES when any is text,
    BOOL when all present ones are true/false, else FP64 (null is missing in any)."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, str) for v in present):
        return "BYTES"
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    return "FP64"


def encode_request(columns: list[str], rows: list[list]) -> dict:
    """A request for these rows (JSON values), one input per column, MLServer's pandas
    content type; NaN (not valid JSON) is sent as null."""
    return encode_columns({name: [r[i] for r in rows] for i, name in enumerate(columns)})


def encode_columns(columns: dict[str, list]) -> dict:
    """A request for these columns of JSON values (a client that holds columns sends
    them as they are: no rows in between); NaN is sent as null."""
    inputs = []
    for name, values in columns.items():
        values = [None if isinstance(v, float) and v != v else v for v in values]
        inputs.append(
            {
                "name": name,
                "shape": [len(values), 1],
                "datatype": datatype_of(values),
                "data": values,
            }
        )
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def check_request(message) -> None:
    """What MLServer's schema would coerce or crash on, refused as the client sent it:
    a shape holding anything but integers ("1" became 1), `"data": null` (a traceback),
    an `id` that is not short text (echoed into the answer and its headers)."""
    if not isinstance(message, dict):
        return  # the schema's own 400 says what is wrong
    request_id = message.get("id")
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id) > MAX_ID_CHARS
    ):
        raise BadRequest(f'"id" must be text of at most {MAX_ID_CHARS} characters')
    inputs = message.get("inputs")
    if not isinstance(inputs, list):
        return
    for i, request_input in enumerate(inputs):
        if not isinstance(request_input, dict):
            continue
        name = request_input.get("name")
        where = f"input '{name[:40]}'" if isinstance(name, str) else f"input {i}"
        shape = request_input.get("shape")
        if "shape" in request_input and not _int_list(shape):
            raise BadRequest(f"{where}: shape must be a list of integers; got {short(shape)}")
        if "data" in request_input and request_input["data"] is None:
            raise BadRequest(
                f"{where}: data is null; send a list of values (null for a missing one)"
            )


def _int_list(shape) -> bool:
    return isinstance(shape, list) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    )


def check_input(
    name: str, datatype: str, shape, values: list, data: bool = True, kinds: set | None = None
) -> None:
    """One input: its shape must describe its data, and (with `data`) its data match its
    datatype; null and NaN are a missing value in any datatype, and "" in BYTES and BOOL
    (as on Seldon in a text or true/false column). Inputs the model ignores are checked
    with `data=False`. `kinds`: the set of the values' types, when known."""
    where = f"input '{name[:40]}'"
    if not _int_list(shape):
        raise BadRequest(f"{where}: shape must be a list of integers; got {short(shape)}")
    if any(d < 0 for d in shape):
        raise BadRequest(f"{where}: shape {shape} has a negative dimension")
    if shape and shape[0] > MAX_ROWS:
        raise BadRequest(f"{shape[0]} rows in one request; the limit is {MAX_ROWS}")
    size = 1
    for d in shape:
        size *= d
        if size > len(values):
            break
    if size != len(values):
        raise BadRequest(f"{where}: shape {shape} does not match its {len(values)} values")
    if data and not _types_fit(datatype, values, kinds):
        _refuse_value(where, datatype, values)


def _types_fit(datatype: str, values: list, kinds: set | None = None) -> bool:
    """True when every value fits `datatype`, judged from the set of their types (one
    pass at C speed); False means "look value by value" (`_refuse_value`), not "wrong"."""
    kinds = set(map(type, values)) if kinds is None else kinds
    if datatype in FLOATS:
        return kinds <= {int, float, _NONE}
    if datatype in INT_RANGES:
        if not kinds <= {int, _NONE}:
            return False
        present = [v for v in values if v is not None] if _NONE in kinds else values
        if not present:
            return True
        low, high = INT_RANGES[datatype]
        return low <= min(present) and max(present) <= high
    if datatype == "BOOL":
        return kinds <= {bool, _NONE}
    return kinds <= {str, _NONE}  # BYTES


def _refuse_value(where: str, datatype: str, values: list) -> None:
    """Name the first value that does not fit its datatype (a missing one always fits)."""
    if datatype == "BOOL":
        ok, wanted = (lambda v: isinstance(v, bool)), "true/false"
    elif datatype in INT_RANGES:
        low, high = INT_RANGES[datatype]
        ok = lambda v: (  # noqa: E731
            isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
        )
        wanted = f"integers from {low} to {high}"
    elif datatype.startswith("FP"):
        ok = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
        wanted = "numbers"
    else:  # BYTES
        ok, wanted = (lambda v: isinstance(v, str)), "text"
    text = datatype in ("BYTES", "BOOL")  # "" is missing there, as in a text column
    for i, value in enumerate(values):
        if not (is_missing_text(value) if text else is_missing(value)) and not ok(value):
            raise BadRequest(
                f"{where} is {datatype}, which holds {wanted}; value {i} is {short(value)}"
            )


def decode_inputs(
    message: dict,
    expected: list[str],
    passed_over: tuple[str, ...] = (),
    check_names=None,
    check_values: bool = True,
) -> tuple[dict | list, list[str] | None]:
    """The values of a request, checked against the V2 rules: `(columns, names)` with
    one flat list per input the model takes, or `(rows, None)` for one 2-D input of
    unnamed columns. `check_names(names, expected, passed_over)` checks the column names
    first and returns the ignored ones (so a column the model does not take is named as
    such); the values of inputs the model ignores are not checked, nor any with
    `check_values=False` (the recorder reads requests a model server already took)."""
    inputs = message.get("inputs")
    if not inputs:
        raise BadRequest('"inputs" is empty: send one input per column')
    for wanted in message.get("outputs") or []:
        name = wanted.get("name") if isinstance(wanted, dict) else None
        if name != OUTPUT:
            raise BadRequest(f"unknown output '{str(name)[:40]}': this model has '{OUTPUT}'")
    first = inputs[0]
    shape = list(first.get("shape") or [])
    if (
        len(inputs) == 1
        and len(shape) == 2
        and first["name"] not in expected
        and first["name"] not in passed_over
    ):  # rows without names; one column of another name is an unknown column (below)
        values = _checked(first, check_values)
        rows, width = tensor_shape(shape, len(values), f"input '{first['name'][:40]}'")
        return [values[i * width : (i + 1) * width] for i in range(rows)], None
    names = [i["name"] for i in inputs]
    ignored = check_names(names, expected, passed_over) if check_names else []
    columns = [_checked(i, data=check_values and i["name"] not in ignored) for i in inputs]
    for request_input in inputs:
        shape = list(request_input.get("shape") or [])
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(
                f"input '{request_input['name'][:40]}' has shape {shape}: a column is [rows] "
                "or [rows, 1]"
            )
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise BadRequest(
            f"inputs have different lengths: {dict(zip(names, map(len, columns), strict=False))}"
        )
    return {
        i["name"]: values
        for i, values in zip(inputs, columns, strict=True)
        if i["name"] not in ignored
    }, names


def _datatype(request_input: dict) -> str:
    datatype = request_input.get("datatype")
    return str(getattr(datatype, "value", datatype))


def _checked(request_input: dict, data: bool = True) -> list:
    """The input's values (flat; text as str), once its shape (and, with `data`, its
    datatype) is shown to match them."""
    values = request_input.get("data") or []
    kinds = set(map(type, values))  # one pass at C speed, used for every check below
    if list in kinds:  # nested row-major data
        values = flat(values)
        kinds = set(map(type, values))
    if bytes in kinds:  # MLServer's schema reads BYTES as bytes
        values = [v.decode() if isinstance(v, bytes) else v for v in values]
        kinds = set(map(type, values))
    shape = list(request_input.get("shape") or [])
    check_input(request_input["name"], _datatype(request_input), shape, values, data, kinds)
    return values


# -- answers ----------------------------------------------------------------------------
def encode_output(predictions) -> dict:
    """The `predictions` output of an answer (a numpy array): one value per row, shape
    [rows, 1], MLServer's numpy content type."""
    import numpy as np  # here: the front imports this module and answers within a second

    values = np.asarray(predictions)
    if values.dtype == object or values.dtype.kind in "US":
        datatype, data = "BYTES", values.astype(str).ravel().tolist()
    elif values.dtype.kind == "b":
        datatype, data = "BOOL", values.ravel().tolist()
    elif values.dtype.kind in "iu":
        datatype = f"{'U' if values.dtype.kind == 'u' else ''}INT{values.dtype.itemsize * 8}"
        data = values.ravel().tolist()
    else:
        datatype, data = f"FP{values.dtype.itemsize * 8}", values.ravel().tolist()
    shape = [len(values), 1] if values.ndim == 1 else list(values.shape)
    return {
        "name": OUTPUT,
        "shape": shape,
        "datatype": datatype,
        "parameters": {"content_type": "np"},
        "data": data,
    }


def decode_response(answer) -> tuple[str, list]:
    """(id, one prediction per row) of an answer; KeyError/TypeError when it is none."""
    values = answer["outputs"][0]["data"]
    if not isinstance(values, list):
        raise TypeError("outputs[0].data is not a list")
    return str(answer.get("id") or ""), values


def answered_rows(answer) -> int:
    """How many rows an answer scored (its output's first dimension)."""
    return int(answer["outputs"][0]["shape"][0])


def request_id(message) -> str | None:
    """The `id` a request names (text or a number), if any."""
    found = message.get("id") if isinstance(message, dict) else None
    return str(found) if isinstance(found, str | int) and str(found) else None


def decode_feedback(message: dict) -> tuple[object, object]:
    """(the answer's id, the true labels) of zenkube's V2 feedback; None when absent."""
    return message.get("id"), message.get("truth")


def feedback_answer(request_id: str, labels: int) -> dict:
    return {"id": request_id, "labels": labels}
