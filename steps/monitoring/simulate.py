"""Make a drifted batch from held-out data, as an operator would for a demo."""

from __future__ import annotations

import math

import pandas as pd

from materializers.dataset import NUMERIC, Dataset


def shift_columns(data: Dataset, reference: Dataset, count: int | None = None, by_std: float = 2.0):
    """Shift the first `count` numeric features by `by_std` reference standard deviations.

    By default 40% of the numeric columns (at least 2): enough to cross the default
    drift-share threshold (30%) so the demo shows the whole loop.
    """
    numeric = [c for c, k in reference.schema.items() if k == NUMERIC]
    if count is None:
        count = max(2, math.ceil(0.4 * len(numeric)))
    numeric = numeric[:count]
    frame: pd.DataFrame = data.frame.copy()
    for column in numeric:
        frame[column] = frame[column] + by_std * reference.frame[column].std()
    return frame, numeric
