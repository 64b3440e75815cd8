"""The Seldon Core v1 codec: `{"data": {"names": [...], "ndarray": [[...], ...]}}` or
`{"data": {"tensor": {"shape": [rows, columns], "values": [...]}}}`, answered with
`{"data": {"names": [], "ndarray": [...]}, "meta": {"puid": ...}}`; feedback is
`{"response": {"meta": {"puid": ...}}, "truth": {"data": {"ndarray": [...]}}}`.

One reader and one writer of each message, used by the client, the front and its
recorder, the Seldon runtime and the traffic sink (core/protocol/__init__.py).
Standard library and numpy (imported when a tensor is read) only.
"""

from __future__ import annotations

import math

from core.protocol.wire import BadRequest, short, tensor_shape

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


def decode_request(message) -> tuple[list, list | None]:
    """(rows, names) of a request: `data.ndarray` as sent (a list of rows), or
    `data.tensor` as a float numpy array of its shape (null → NaN); BadRequest says what is
    wrong with any other body. `names` is None when the client sent none."""
    if not isinstance(message, dict):
        raise BadRequest('the body must be a JSON object like {"data": {"ndarray": [[...]]}}')
    data = message.get("data")
    if data is None:
        raise BadRequest('missing "data": send {"data": {"names": [...], "ndarray": [[...], ...]}}')
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
