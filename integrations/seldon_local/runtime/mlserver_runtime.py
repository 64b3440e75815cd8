"""MLServer runtime for the V2 protocol: MLServer's MLflow runtime plus request checks.

Runs inside the MLServer 1.7 environment. Stock MLServer answers 500 for a wrong shape
or strings in numeric columns; this runtime answers 400 with a reason instead.
"""

from __future__ import annotations

import mlflow.sklearn
import numpy as np
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri
from mlserver_mlflow import MLflowRuntime
from validation import (
    BadRequest,
    check_names,
    check_v2_input,
    one_warning_filter,
    predict_or_400,
    read_passed_over,
    read_schema,
    rows_to_frame,
    tensor_shape,
)


def _values(request_input) -> list:
    """The input's data as a flat list (V2 allows nested row-major arrays)."""
    data = request_input.data
    values = list(data.root if hasattr(data, "root") else data)
    if any(isinstance(v, list) for v in values):
        values = _flatten(values)
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def _flatten(values: list) -> list:
    flat, stack = [], [iter(values)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _checked(request_input, data: bool = True) -> list:
    """The input's values, once its shape (and, with `data`, its datatype) is shown to
    match them."""
    values = _values(request_input)
    datatype = getattr(request_input.datatype, "value", request_input.datatype)
    check_v2_input(request_input.name, str(datatype), list(request_input.shape), values, data)
    return values


def v2_rows(
    payload: InferenceRequest, expected: list[str], passed_over: tuple[str, ...] = ()
) -> tuple[list[list], list[str] | None]:
    """Rows and column names from V2 inputs: one input per column, or one 2-D input.
    Inputs named in `passed_over` (columns the model left out at training) are taken
    without a look at their values; the names are checked before any value, so a column
    the model does not take is named as such, in the Seldon server's words."""
    inputs = payload.inputs
    if not inputs:
        raise BadRequest('"inputs" is empty: send one input per column')
    for wanted in payload.outputs or []:
        if wanted.name != "predictions":
            raise BadRequest(f"unknown output '{wanted.name[:40]}': this model has 'predictions'")
    shape = list(inputs[0].shape)
    if (
        len(inputs) == 1
        and len(shape) == 2
        and inputs[0].name not in expected
        and inputs[0].name not in passed_over
    ):  # rows without names; one column of another name is an unknown column (below)
        values = _checked(inputs[0])
        rows, width = tensor_shape(shape, len(values), f"input '{inputs[0].name[:40]}'")
        return [values[i * width : (i + 1) * width] for i in range(rows)], None
    names = [i.name for i in inputs]
    ignored = check_names(names, expected, passed_over)
    columns = [_checked(i, data=i.name not in ignored) for i in inputs]
    for request_input in inputs:
        shape = list(request_input.shape)
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(
                f"input '{request_input.name[:40]}' has shape {shape}: a column is [rows] "
                "or [rows, 1]"
            )
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise BadRequest(
            f"inputs have different lengths: {dict(zip(names, map(len, columns), strict=False))}"
        )
    return [list(row) for row in zip(*columns, strict=False)], names


class ZenkubeMLflowRuntime(MLflowRuntime):
    """MLflow runtime that validates rows against the model signature before predicting."""

    async def load(self) -> bool:
        loaded = await super().load()
        model_uri = await get_model_uri(self._settings)
        self._columns = read_schema(model_uri)
        self._passed_over = read_passed_over(model_uri)
        # Predict with the scikit-learn model itself, as the Seldon runtime does: MLflow's
        # pyfunc wrapper enforces the signature and refuses missing values in columns
        # that had none in the input example, which the model imputes in-process.
        self._sklearn = mlflow.sklearn.load_model(model_uri)
        return loaded

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            rows, names = v2_rows(payload, [c.name for c in self._columns], self._passed_over)
            frame = rows_to_frame(rows, names, self._columns, self._passed_over)
            one_warning_filter()  # see validation.one_warning_filter
            predictions = np.asarray(predict_or_400(self._sklearn, frame))
        except BadRequest as exc:
            raise MLServerError(str(exc), status_code=400) from None
        if predictions.dtype == object:
            predictions = predictions.astype(str)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("predictions", predictions)],
        )
