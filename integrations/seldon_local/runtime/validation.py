"""Request validation shared by both protocols: raw JSON rows → a typed DataFrame, or a reason.

Runs inside the model-server environments (numpy/pandas/PyYAML only).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

NUMERIC_TYPES = {"double", "float", "long", "integer", "int"}
MAX_ROWS = int(os.environ.get("ZENKUBE_MAX_ROWS", "200000"))


def listing(names, limit: int = 8) -> str:
    """A short, readable list of column names."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")


class BadRequest(ValueError):
    """The request cannot be scored; the message says why (answered as HTTP 400)."""


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool


def read_schema(model_dir: str) -> list[Column]:
    """Input columns from the MLflow model's signature (MLmodel file)."""
    with open(os.path.join(model_dir, "MLmodel")) as f:
        meta = yaml.safe_load(f)
    inputs = json.loads(meta["signature"]["inputs"])
    return [Column(c["name"], c["type"] in NUMERIC_TYPES) for c in inputs]


def rows_to_frame(rows, names, schema: list[Column]) -> pd.DataFrame:
    """Check shape, column names and value types; return rows in the model's column order."""
    if not isinstance(rows, list | np.ndarray):
        raise BadRequest("data must be a list of rows (a 2-D array)")
    if len(rows) == 0:
        raise BadRequest("the batch is empty: send at least one row")
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"{len(rows)} rows in one request; the limit is {MAX_ROWS}")
    expected = [c.name for c in schema]
    if names:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadRequest("names must be a list of column names")
        unknown = [n for n in names if n not in expected]
        missing = [n for n in expected if n not in names]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown column(s): {listing(unknown)}")
            if missing:
                parts.append(f"missing column(s): {listing(missing)}")
            raise BadRequest("; ".join(parts) + f". Expected columns: {listing(expected)}")
        if len(set(names)) != len(names):
            raise BadRequest("names has duplicate columns")
    else:
        names = expected
    width = len(names)
    by_name = {c.name: c for c in schema}
    if all(by_name[n].numeric for n in names):
        fast = _numeric_fast_path(rows, names, width)
        if fast is not None:
            return fast[expected]
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple | np.ndarray):
            raise BadRequest(f"row {i} is not a list; data must be 2-D (a list of rows)")
        if len(row) != width:
            raise BadRequest(
                f"row {i} has {len(row)} values but the model expects {width} ({listing(expected)})"
            )
    frame = pd.DataFrame(rows, columns=names)
    numeric_names = [n for n in names if by_name[n].numeric]
    if numeric_names:
        block = frame[numeric_names]
        try:
            values = block.to_numpy(dtype=float)
            ok = not any(isinstance(v, str | bool) for v in _sample_objects(block))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise BadRequest(_first_non_number(frame, numeric_names))
        if not np.isfinite(values).all():
            row, col = np.argwhere(~np.isfinite(values))[0]
            raise BadRequest(
                f"column '{numeric_names[col]}' row {row} is {values[row, col]!r}: "
                "send finite numbers (no NaN, Infinity or null)"
            )
        frame[numeric_names] = values
    for name in names:
        if not by_name[name].numeric:
            bad = frame[name].map(lambda v: not isinstance(v, str))
            if bad.any():
                row = int(np.argmax(bad.to_numpy()))
                value = frame[name].iloc[row]
                value = value.item() if isinstance(value, np.generic) else value
                raise BadRequest(f"column '{name}' expects text; row {row} has {value!r}")
    return frame[expected]


def _numeric_fast_path(rows, names: list[str], width: int) -> pd.DataFrame | None:
    """All-numeric batches: one C-level conversion instead of per-cell checks.

    Returns None (use the slow, explaining path) unless every value is a JSON number
    and every row has `width` values; strings such as "1.5" make numpy pick a text
    dtype, so they still reach the slow path and are refused there.
    """
    try:
        values = np.array(rows)
    except ValueError:  # ragged rows
        return None
    if values.ndim != 2 or values.shape[1] != width or values.dtype.kind not in "if":
        return None
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        return None
    return pd.DataFrame(values, columns=names)


def _sample_objects(block: pd.DataFrame):
    # Strings that look like numbers ("1.5") convert silently; refuse them by type.
    for dtype, column in zip(block.dtypes, block.columns, strict=True):
        if dtype is np.dtype(object):
            yield from block[column]


def _first_non_number(frame: pd.DataFrame, numeric_names: list[str]) -> str:
    for name in numeric_names:
        for row, value in enumerate(frame[name]):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"column '{name}' expects numbers; row {row} has {value!r}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"column '{name}' row {row} is {value!r}: send finite numbers"
    return "non-numeric values in numeric columns"


def parse_seldon_request(message) -> tuple[list, list | None]:
    """(rows, names) from a Seldon v1 message: data.ndarray or data.tensor."""
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
        try:
            shape = [int(s) for s in tensor["shape"]]
            values = np.asarray(tensor["values"], dtype=float)
            return values.reshape(shape).tolist(), names
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"data.tensor needs matching shape and values: {exc}") from exc
    raise BadRequest('"data" needs "ndarray" (rows) or "tensor" (shape + values)')
