"""What both wire codecs share: the refusal, the row cap, 2-D tensor shapes and JSON.

Standard library and numpy only (the model-server environments import it too); orjson
is used when it is installed (the server environments have it), else the stdlib parser.
"""

from __future__ import annotations

import gc
import json
import math
import os

try:  # ~4x faster on a 10,000-row body; the server environments install it
    import orjson
except ImportError:  # pragma: no cover - zenkube's own environment has no orjson
    orjson = None

MAX_ROWS = int(os.environ.get("ZENKUBE_MAX_ROWS", "200000"))


class BadRequest(ValueError):
    """The request cannot be scored; the message says why (answered as HTTP 400)."""


def short(value, limit: int = 40) -> str:
    """A bad value for an error message: its type and at most a short prefix."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def is_missing(value) -> bool:
    """null or NaN: a missing value in any column."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_missing_text(value) -> bool:
    """Missing in a text, date or true/false column: null, NaN or "" (a CSV's empty cell)."""
    return is_missing(value) or (isinstance(value, str) and value == "")


def tensor_shape(shape, count: int, where: str) -> tuple[int, int]:
    """(rows, columns) of a 2-D tensor shape, checked against `count` values before any
    allocation: integers ≥ 0 only, at most MAX_ROWS rows, product equal to the values sent."""
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise BadRequest(
            f"{where}.shape must be [rows, columns] (two integers); got {short(shape)}"
        )
    rows, width = shape
    if rows < 0 or width < 0:
        raise BadRequest(f"{where}.shape {shape} has a negative dimension")
    if rows > MAX_ROWS:
        raise BadRequest(f"{rows} rows in one request; the limit is {MAX_ROWS}")
    if rows * width != count:
        raise BadRequest(f"{where}.shape {shape} needs {rows * width} values; {count} were sent")
    if rows == 0:
        raise BadRequest("the batch is empty: send at least one row")
    return rows, width


def loads(body: bytes | str):
    """A JSON body as Python values. NaN and Infinity are not JSON, but clients send
    them: they are read (so a model server can name the bad value), not refused here.
    ValueError when the body is not JSON.

    The cycle collector is paused while parsing: a parsed body holds no reference cycles,
    and a 10,000-row Seldon body is 10,000 new lists, which in a model server's process
    (~300,000 objects of imports and the model) set off collections of every generation
    on the way: the parse took 8 ms with it paused and 12 ms (median) to 140 ms (a full
    collection) without (docs/performance.md §16). It is left as it was found: only a
    parse that paused it turns it back on."""
    paused = gc.isenabled()
    gc.disable()
    try:
        if orjson is not None:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                pass  # NaN/Infinity, or not JSON: the stdlib parser reads the one, refuses the other
        return json.loads(body)
    finally:
        if paused:
            gc.enable()


def dumps(message) -> bytes:
    """A message as compact JSON bytes (numpy values included)."""
    if orjson is not None:
        return orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(message, separators=(",", ":"), default=_plain).encode()


def _plain(value):
    """numpy scalars and arrays as JSON values (for the stdlib encoder)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def flat(values) -> list:
    """A nested row-major list flattened (V2 allows nested data); a flat list as is."""
    if list not in set(map(type, values)):  # one pass at C speed
        return values if isinstance(values, list) else list(values)
    out, stack = [], [iter(values)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out
