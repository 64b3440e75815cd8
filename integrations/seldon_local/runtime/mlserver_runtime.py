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
from validation import BadRequest, listing, predict_or_400, read_schema, rows_to_frame


def _values(request_input) -> list:
    data = request_input.data
    values = list(data.root if hasattr(data, "root") else data)
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def v2_rows(payload: InferenceRequest, expected: list[str]) -> tuple[list[list], list[str] | None]:
    """Rows and column names from V2 inputs: one input per column, or one 2-D input."""
    inputs = payload.inputs
    if not inputs:
        raise BadRequest('"inputs" is empty: send one input per column')
    if len(inputs) == 1 and inputs[0].name not in expected:
        shape = list(inputs[0].shape)
        values = _values(inputs[0])
        if len(shape) != 2:
            raise BadRequest(
                f"input '{inputs[0].name}' is not a column name ({listing(expected)}) "
                "and not a 2-D [rows, columns] tensor"
            )
        if shape[0] * shape[1] != len(values):
            raise BadRequest(f"shape {shape} does not match {len(values)} values")
        return [values[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])], None
    names = [i.name for i in inputs]
    columns = [_values(i) for i in inputs]
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
        # Predict with the scikit-learn model itself, as the Seldon runtime does: MLflow's
        # pyfunc wrapper enforces the signature and refuses missing values in columns
        # that had none in the input example, which the model imputes in-process.
        self._sklearn = mlflow.sklearn.load_model(model_uri)
        return loaded

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            rows, names = v2_rows(payload, [c.name for c in self._columns])
            frame = rows_to_frame(rows, names, self._columns)
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
