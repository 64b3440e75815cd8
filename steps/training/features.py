"""Missing cells and date columns, inside the model (so the served model takes raw rows).

This module is pickled by value into every logged model (see
`integrations/mlflow/registry.py`): the model servers, which do not have zenkube
installed, can load it. Keep it free of imports from zenkube.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

PARTS = ("days", "year", "month", "weekday", "hour")


class MissingAsNaN(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """None, pandas' NA, NaN and empty text are one missing value: NaN.

    Training data read back from Parquet holds `None` in text columns, CSV readers give
    NaN, a client sends `null`; scikit-learn's imputers and encoders see only NaN as
    missing (a `None` would be learned as a category). Every text column goes through
    this first, in training and in serving alike.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def transform(self, X):
        values = (
            X.to_numpy(dtype=object) if hasattr(X, "to_numpy") else np.asarray(X, dtype=object)
        ).copy()
        missing = pd.isna(values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # elementwise comparison of mixed objects
            missing |= values == ""
        values[missing] = np.nan
        return values


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Each date column -> days since 1970, year, month, weekday, hour (NaN when unparseable)."""

    def fit(self, X, y=None):
        self.columns_ = list(X.columns) if hasattr(X, "columns") else list(range(X.shape[1]))
        return self

    def transform(self, X):
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        blocks = []
        for column in frame.columns:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)
            missing = values.isna().to_numpy()
            days = (values - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
            parts = np.column_stack(
                [
                    days.to_numpy(dtype=float, na_value=np.nan),
                    values.dt.year.to_numpy(dtype=float, na_value=np.nan),
                    values.dt.month.to_numpy(dtype=float, na_value=np.nan),
                    values.dt.weekday.to_numpy(dtype=float, na_value=np.nan),
                    values.dt.hour.to_numpy(dtype=float, na_value=np.nan),
                ]
            )
            parts[missing] = np.nan
            blocks.append(parts)
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else self.columns_
        return np.array([f"{c}_{p}" for c in names for p in PARTS], dtype=object)
