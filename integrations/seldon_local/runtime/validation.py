"""Request validation shared by both protocols: raw JSON rows → a typed DataFrame, or a reason.

Runs inside the model-server environments (numpy/pandas/PyYAML only).

The policy: a row the model itself accepts is accepted. `null` (or NaN) is a missing
value in any column, which the model imputes, and so is "" in a text, date or true/false
column (as a CSV's empty cell); numbers go to numeric columns (ints are
fine where floats were trained), text to text and date columns, true/false to boolean
columns, and true/false count as 1/0 in numeric columns (as numpy and pandas read them
in-process). Refused (400): a wrong type (text in a numeric column, a number in a text
column, numeric strings such as "1.5"), Infinity, wrong shapes or names — and any row the model's own
predict refuses, with its reason.

Extra columns: those the model left out at training (its target, the row identifiers
training dropped; recorded with the model, `read_passed_over`) are accepted and ignored,
so a client may send the training file's own rows; any other unknown column is refused
with the list of expected columns. The same rule and the same words on both protocols
and in `run.py predict` (steps/inference/score.py).

Shapes are checked before anything is allocated: a tensor's dimensions must be
non-negative integers whose product equals the number of values sent, and its row count
is capped (ZENKUBE_MAX_ROWS), so a request costs work in proportion to its bytes. On V2
each input's data must also match its declared datatype (BOOL holds true/false, INT*/UINT*
integers in range, FP* numbers, BYTES text; null is missing in any of them).
"""

from __future__ import annotations

import gc
import json
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

# The wire codecs: how a body becomes rows, and the refusal (runtime/README.md)
from core.protocol.wire import MAX_ROWS, BadRequest, is_missing_text, short

NUMERIC_TYPES = {"double", "float", "long", "integer", "int"}


def listing(names, limit: int = 8) -> str:
    """A short, readable list of column names (a long name is cut to a short prefix)."""
    names = [n if len(str(n)) <= 40 else f"{str(n)[:40]}… ({len(str(n))} chars)" for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool
    boolean: bool = False


def _mlmodel(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "MLmodel")) as f:
        return yaml.safe_load(f)


def read_schema(model_dir: str) -> list[Column]:
    """Input columns from the MLflow model's signature (MLmodel file)."""
    inputs = json.loads(_mlmodel(model_dir)["signature"]["inputs"])
    return [Column(c["name"], c["type"] in NUMERIC_TYPES, c["type"] == "boolean") for c in inputs]


SCHEMA_KEY = "zenkube_input_schema"  # integrations/mlflow/registry.py records it


def read_passed_over(model_dir: str) -> tuple[str, ...]:
    """Columns of the training file the model left out: its target and the row
    identifiers training dropped (core/schema.py `InputSchema`, recorded in the MLmodel's
    metadata at registration). A request may carry them; they are ignored. Nothing for a
    model without that record."""
    meta = _mlmodel(model_dir)
    recorded = (meta.get("metadata") or {}).get(SCHEMA_KEY) or {}
    inputs = {c.name for c in read_schema(model_dir)}
    names = [recorded.get("target") or "", *(recorded.get("ignored_columns") or [])]
    return tuple(n for n in dict.fromkeys(map(str, names)) if n and n not in inputs)


def one_warning_filter() -> None:
    """Leave the model server one warning filter ("default": each warning once per place).

    scikit-learn re-applies every warning filter of the process around each joblib task,
    and a forest's predict is one task per tree: with the ~20-60 filters that Flask,
    gunicorn, MLflow and MLServer install, that is most of a 100-row request's time
    (docs/performance.md §6). Called once the server has imported what it needs."""
    if len(warnings.filters) > 1:
        warnings.resetwarnings()
        warnings.simplefilter("default")


def settle_loaded() -> None:
    """Leave what the server holds once its model is loaded (the imports of mlflow,
    scikit-learn, pandas and the server, the model: ~300,000 objects) out of the cycle
    collector's full passes: each pass walked all of them, ~100 ms every few 10,000-row
    requests, which made a request's mean CPU time 72 ms where its median was 56
    (docs/performance.md §16). Called once the model is loaded."""
    gc.collect()
    gc.freeze()


def predict_or_400(model, frame: pd.DataFrame):
    """The model's predictions; a row it refuses is the client's error (400), not a 500."""
    try:
        return model.predict(frame)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = _too_large_for_float32(frame) if "too large" in first else ""
        raise BadRequest(f"the model cannot score these rows: {where}{first[:200]}") from None


def _too_large_for_float32(frame: pd.DataFrame) -> str:
    """Name the first cell a float32 model (trees, forests) cannot hold, if any."""
    limit = float(np.finfo(np.float32).max)
    for name in frame.columns:
        column = pd.to_numeric(frame[name], errors="coerce")
        big = np.abs(column.to_numpy(dtype=float, na_value=np.nan)) > limit
        if big.any():
            row = int(np.argmax(big))
            return f"column '{name}' row {row} is beyond the float32 range (±3.4e38); "
    return ""


def rows_to_frame(
    rows, names, schema: list[Column], passed_over: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Check shape, column names and value types; return rows in the model's column order.
    Named columns in `passed_over` (see `read_passed_over`) are dropped unchecked."""
    if not isinstance(rows, list | np.ndarray):
        raise BadRequest("data must be a list of rows (a 2-D array)")
    if len(rows) == 0:
        raise BadRequest("the batch is empty: send at least one row")
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"{len(rows)} rows in one request; the limit is {MAX_ROWS}")
    expected = [c.name for c in schema]
    extra = check_names(names, expected, passed_over) if names else []
    names = names or expected
    width = len(names)
    by_name = {c.name: c for c in schema}
    if all(by_name[n].numeric for n in names if n in by_name):  # extras: any numbers do
        fast = _numeric_fast_path(rows, names, width)
        if fast is not None:
            return fast[expected]
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple | np.ndarray):
            raise BadRequest(f"row {i} is not a list; data must be 2-D (a list of rows)")
        if len(row) != width:
            wanted = (
                f"{width} columns are named ({listing(names)})"
                if extra
                else f"the model expects {width} ({listing(expected)})"
            )
            raise BadRequest(f"row {i} has {len(row)} values but {wanted}")
    try:
        frame = pd.DataFrame(rows, columns=names)
    except OverflowError:
        frame = pd.DataFrame([list(r) for r in rows], columns=names, dtype=object)
    return typed_frame(frame.drop(columns=extra) if extra else frame, schema)


def columns_to_frame(columns: dict[str, list], schema: list[Column]) -> pd.DataFrame:
    """A V2 request's columns (names already checked, ignored ones left out; see
    core.protocol.v2.decode_inputs) as a typed frame in the model's order: a numeric
    column of numbers becomes one float array, with no rows built in between."""
    length = len(next(iter(columns.values()))) if columns else 0
    if length == 0:
        raise BadRequest("the batch is empty: send at least one row")
    if length > MAX_ROWS:
        raise BadRequest(f"{length} rows in one request; the limit is {MAX_ROWS}")
    by_name = {c.name: c for c in schema}
    data: dict[str, list | np.ndarray] = {}
    for name, values in columns.items():
        numbers = _float_column(values) if by_name[name].numeric else None
        data[name] = values if numbers is None else numbers
    expected = [c.name for c in schema]
    if all(isinstance(data.get(n), np.ndarray) for n in expected):  # all-numeric batches
        block = np.column_stack([data[n] for n in expected])
        if not np.isinf(block).any():  # else typed_frame names the value
            return pd.DataFrame(block, columns=expected)
    try:
        frame = pd.DataFrame(data)
    except OverflowError:
        frame = pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in data.items()})
    return typed_frame(frame, schema)


def named_columns_to_frame(
    columns: dict, names: list, schema: list[Column], passed_over: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Columns sent by name (a Seldon `binData` body, core.protocol.seldon.decode_binary)
    as a typed frame: the names are checked as a JSON body's are (`check_names`: unknown
    refused, missing refused, each once, the model's left-out columns taken and ignored),
    then each value as in `columns_to_frame`, with the same words."""
    extra = check_names(names, [c.name for c in schema], passed_over)
    return columns_to_frame({n: v for n, v in columns.items() if n not in extra}, schema)


_NUMBERS = {int, float, bool, type(None)}


def _float_column(values: list) -> np.ndarray | None:
    """A column of JSON numbers as float64 (true/false as 1/0 and null as NaN, as numpy
    and pandas read them in-process); None when any value is not a number (typed_frame
    then names it: "1.5" must not pass as 1.5)."""
    try:
        array = np.array(values)
        if array.dtype.kind in "fiub":
            return array.astype(float, copy=False)
        if array.dtype == object and set(map(type, values)) <= _NUMBERS:
            return np.array(values, dtype=float)
    except (OverflowError, ValueError, TypeError):
        pass  # integers beyond float64: typed_frame says so
    return None


def check_names(names, expected: list[str], passed_over: tuple[str, ...] = ()) -> list[str]:
    """Column names must be the model's, each once (in any order); those in `passed_over`
    (columns the model left out at training) may come too and are returned, for the
    caller to drop. Any other name is refused with the list of expected columns."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("names must be a list of column names")
    known = set(expected)
    ignored = [n for n in passed_over if n not in known]
    unknown = [n for n in names if n not in known and n not in ignored]
    sent = set(names)
    missing = [n for n in expected if n not in sent]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown column(s): {listing(unknown)}")
        if missing:
            parts.append(f"missing column(s): {listing(missing)}")
        also = f" (also taken and ignored: {listing(ignored)})" if ignored else ""
        raise BadRequest("; ".join(parts) + f". Expected columns: {listing(expected)}{also}")
    if len(sent) != len(names):
        seen: set[str] = set()
        twice = list(dict.fromkeys(n for n in names if n in seen or seen.add(n)))
        raise BadRequest(f"duplicate column(s): {listing(twice)}; send each column once")
    return [n for n in names if n in ignored]


def typed_frame(frame: pd.DataFrame, schema: list[Column], first_row: int = 0) -> pd.DataFrame:
    """Check each value's type against its column; return the frame in the model's order.

    `frame` has the model's columns in any order (see `check_names`). Used for request
    rows and, in zenkube's batch scoring, for each chunk of a file (`first_row` is the
    chunk's first row in the file, so a reason names the file's row)."""
    names = list(frame.columns)
    expected = [c.name for c in schema]
    by_name = {c.name: c for c in schema}
    numeric_names = [n for n in names if by_name[n].numeric]
    if numeric_names:
        block = frame[numeric_names]
        try:
            values = block.to_numpy(dtype=float)
            ok = not any(isinstance(v, str) for v in _sample_objects(block))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise BadRequest(_first_non_number(frame, numeric_names, first_row))
        if np.isinf(values).any():
            row, col = np.argwhere(np.isinf(values))[0]
            raise BadRequest(
                f"column '{numeric_names[col]}' row {row + first_row} is "
                f"{float(values[row, col])!r}: "
                "send finite numbers (null for a missing value)"
            )
        frame[numeric_names] = values
    for name in names:
        if by_name[name].numeric:
            continue
        wanted, label = (bool, "true/false") if by_name[name].boolean else (str, "text")
        column = frame[name]
        missing = column.map(is_missing_text)
        bad = ~missing & column.map(lambda v, t=wanted: not isinstance(v, t))
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            value = column.iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise BadRequest(
                f"column '{name}' expects {label}; row {row + first_row} has {short(value)}"
            )
        if missing.any():
            # As pandas reads a missing cell: NaN, which the model's imputer fills.
            frame[name] = column.astype(object).where(~missing, np.nan)
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
    if np.isinf(values).any():
        return None
    return pd.DataFrame(values, columns=names)


def _sample_objects(block: pd.DataFrame):
    # Strings that look like numbers ("1.5") convert silently; refuse them by type.
    for dtype, column in zip(block.dtypes, block.columns, strict=True):
        if dtype is np.dtype(object):
            yield from block[column]


def _first_non_number(frame: pd.DataFrame, numeric_names: list[str], first_row: int = 0) -> str:
    for name in numeric_names:
        for row, value in enumerate(frame[name], start=first_row):
            if value is None:
                continue
            if not isinstance(value, int | float):
                return f"column '{name}' expects numbers; row {row} has {short(value)}"
            if isinstance(value, int) and abs(value) > 1.7e308:
                return f"column '{name}' row {row} is too large for a number: {short(value)}"
    return "non-numeric values in numeric columns"
