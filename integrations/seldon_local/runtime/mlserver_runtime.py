"""MLServer runtime for the V2 protocol: MLServer's MLflow runtime plus request checks.

Runs inside the MLServer 1.7 environment. Stock MLServer answers 500 for a wrong shape
or strings in numeric columns; this runtime answers 400 with a reason instead.
"""

from __future__ import annotations

import mlflow.sklearn
import numpy as np
import pandas as pd
import validation
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from mlserver.utils import get_model_uri
from mlserver_mlflow import MLflowRuntime

from core.protocol import v2  # the V2 wire codec (loopback.py puts it on the path)


def _message(payload: InferenceRequest) -> dict:
    """The request as the V2 codec reads it (core.protocol.v2): the values MLServer's
    schema parsed, not copied."""
    return {
        "inputs": [
            {
                "name": i.name,
                "shape": list(i.shape),
                "datatype": str(getattr(i.datatype, "value", i.datatype)),
                "data": i.data.root if hasattr(i.data, "root") else i.data,
            }
            for i in payload.inputs
        ],
        "outputs": [{"name": o.name} for o in payload.outputs or []],
    }


def v2_frame(
    payload: InferenceRequest, schema: list, passed_over: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The request's rows as a typed frame in the model's column order (BadRequest says
    what is wrong): one input per column, or one 2-D input of rows."""
    expected = [c.name for c in schema]
    values, names = v2.decode_inputs(
        _message(payload), expected, passed_over, validation.check_names
    )
    if names is None:  # one 2-D input: rows, checked as Seldon's are
        return validation.rows_to_frame(values, None, schema, passed_over)
    return validation.columns_to_frame(values, schema)


class ZenkubeMLflowRuntime(MLflowRuntime):
    """MLflow runtime that validates rows against the model signature before predicting."""

    async def load(self) -> bool:
        loaded = await super().load()
        model_uri = await get_model_uri(self._settings)
        self._columns = validation.read_schema(model_uri)
        self._passed_over = validation.read_passed_over(model_uri)
        # Predict with the scikit-learn model itself, as the Seldon runtime does: MLflow's
        # pyfunc wrapper enforces the signature and refuses missing values in columns
        # that had none in the input example, which the model imputes in-process.
        self._sklearn = mlflow.sklearn.load_model(model_uri)
        validation.settle_loaded()
        return loaded

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            frame = v2_frame(payload, self._columns, self._passed_over)
            validation.one_warning_filter()
            predictions = np.asarray(validation.predict_or_400(self._sklearn, frame))
        except validation.BadRequest as exc:
            raise MLServerError(str(exc), status_code=400) from None
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[ResponseOutput(**v2.encode_output(predictions))],
        )
