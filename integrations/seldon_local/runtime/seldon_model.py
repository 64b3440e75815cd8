"""The model class the Seldon Core microservice wraps: an MLflow scikit-learn model.

Runs inside the seldon-core 1.18 environment. Answers like Seldon's MLFLOW_SERVER,
but validates requests first (400 with a reason instead of 500).
"""

from __future__ import annotations

import logging
import os
import uuid

import mlflow.sklearn
import validation
from seldon_core.flask_utils import SeldonMicroserviceException

from core.protocol import seldon  # the Seldon wire codec (loopback.py puts it on the path)

logger = logging.getLogger(__name__)


class ZenkubeSeldonModel:
    """Seldon user model; `model_uri` is the local folder of an MLflow model."""

    def __init__(self, model_uri: str, model_name: str = "classifier"):
        self.model_uri = model_uri
        self.model_name = model_name
        self.ready = False

    def load(self) -> None:
        os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        self.schema = validation.read_schema(self.model_uri)
        self.passed_over = validation.read_passed_over(self.model_uri)  # taken and ignored
        self.model = mlflow.sklearn.load_model(self.model_uri)
        validation.one_warning_filter()
        validation.settle_loaded()
        self.ready = True
        logger.info("Loaded %s with %d input columns", self.model_uri, len(self.schema))

    def kept_columns(self, names: list) -> list:
        """Of a binData body's columns, those the model reads: the names are checked (as
        a JSON body's) before any column is converted."""
        ignored = validation.check_names(names, [c.name for c in self.schema], self.passed_over)
        return [name for name in names if name not in ignored]

    def predict_raw(self, message):
        # Seldon's wrapper hands a model with predict_raw the message as sent, binData
        # still base64 (seldon-core 1.18 `seldon_methods.predict`): the codec reads it.
        if not self.ready:
            self.load()
        try:
            values, names = seldon.decode_request(message, self.kept_columns)
            if isinstance(values, dict):  # binData: columns by name
                frame = validation.named_columns_to_frame(
                    values, names, self.schema, self.passed_over
                )
            else:
                frame = validation.rows_to_frame(values, names, self.schema, self.passed_over)
            validation.one_warning_filter()  # anything imported since load may have added some
            predictions = validation.predict_or_400(self.model, frame)
        except validation.BadRequest as exc:
            raise SeldonMicroserviceException(
                str(exc), status_code=400, reason="BAD_REQUEST"
            ) from None
        # Seldon's executor gives every prediction a `puid` (header Seldon-Puid; the
        # client's, when it sent one), logs it as the CloudEvent id, and feedback names it.
        puid = str(_puid_header() or seldon.request_puid(message) or uuid.uuid4().hex)
        return seldon.encode_response(predictions, puid, self.model_name)

    def health_status(self):
        if not self.ready:
            raise SeldonMicroserviceException("model not loaded", status_code=503)
        return {"status": "ok", "model": self.model_name}

    def init_metadata(self):
        return {
            "name": self.model_name,
            "versions": ["1"],
            "platform": "seldon",
            "inputs": [
                {"name": c.name, "datatype": "FP64" if c.numeric else "BYTES", "shape": [-1]}
                for c in validation.read_schema(self.model_uri)
            ],
            "outputs": [{"name": "predictions", "datatype": "BYTES", "shape": [-1]}],
        }


def _puid_header() -> str | None:
    """The executor's (or zenkube's front's) request id, when serving a request."""
    try:
        from flask import has_request_context, request
    except ImportError:
        return None
    return request.headers.get("Seldon-Puid") if has_request_context() else None
