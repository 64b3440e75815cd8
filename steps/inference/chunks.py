"""A CSV or Parquet file (local or an artifact-store URI) read a chunk of rows at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pandas as pd
from zenml.io import fileio

from core.errors import ConfigError
from integrations.seldon_local.runtime.validation import listing
from steps.data.load import check_unique_header, read_errors_explained

PARQUET = {".parquet", ".pq"}
CSV = {".csv", ".txt", ""}


def check_readable(path: str) -> None:
    """Refuse a missing file or one that is neither CSV nor Parquet, before any work."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PARQUET | CSV:
        raise ConfigError(f"Cannot read {path}: use a .csv or .parquet file.")
    if not fileio.exists(path):
        raise ConfigError(
            f"Input file not found: {path}. Pass an existing CSV/Parquet path or URI."
        )


def no_rows(path: str, header: list[str] | None, columns: list[str] | None) -> str:
    """Why `path` has no rows to score and what to give instead, in one paragraph: a
    zero-byte or blank CSV (no header row), a header row with nothing under it, an empty
    Parquet table or JSON list. `columns`: the model's (None when they cannot be read)."""
    wanted = f"the model's columns ({listing(columns)})" if columns else "the model's columns"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in PARQUET:
        return f"{path} has no rows to score. Write the rows to score, with {wanted}."
    if suffix == ".json":
        return (
            f"{path} has no rows to score. Give a list of row objects (or {{columns, data}}) "
            f"with {wanted}."
        )
    if header and not set(columns or ()) - set(header):
        return (
            f"{path} has a header row but no rows to score under it. Add the rows to score "
            "under the header, one per line."
        )
    if header:
        what = f"has a header row ({listing(header)}) but no rows to score under it"
    else:
        what = "is empty: it has no header row and no rows to score"
    return (
        f"{path} {what}. Give a CSV whose first line is a header row of {wanted}, then one "
        "row per line."
    )


def read_chunks(
    path: str,
    rows: int,
    text_columns: tuple[str, ...] = (),
    numeric_columns: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame]:
    """The file's rows, `rows` at a time, as pandas frames (an empty file yields nothing).

    Only one chunk is in memory at a time. In a CSV file every cell is text: columns named
    in `text_columns` stay text (a chunk whose values all look like numbers keeps its
    categories), and in `numeric_columns` a cell that reads as a number is one, so a word
    among numbers is the one cell left as text (and named by the checks that follow).
    """
    check_readable(path)
    parquet = os.path.splitext(path)[1].lower() in PARQUET
    with fileio.open(path, "rb") as f:
        with read_errors_explained(path, parquet):
            if parquet:
                yield from _parquet_chunks(path if os.path.exists(path) else f, rows)
            else:
                yield from _csv_chunks(f, path, rows, text_columns, numeric_columns)


def _parquet_chunks(source, rows: int) -> Iterator[pd.DataFrame]:
    """One row group at a time, read column by column (as `materializers.dataset` reads):
    the peak is one row group and a chunk, whatever the file's length. Arrow's own batch
    reader kept memory it had freed and grew with the file (docs/performance.md §11)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    meta = parquet.schema_arrow.pandas_metadata or {}
    # A stored pandas index is the row labels, not a column (as materializers.dataset reads it).
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    names = [n for n in parquet.schema_arrow.names if n not in index]
    check_unique_header(names, str(source))
    for group in range(parquet.metadata.num_row_groups):
        columns = {}
        for name in names:
            part = parquet.read_row_group(group, columns=[name]).to_pandas(self_destruct=True)
            columns[name] = part[name].reset_index(drop=True)
        frame = pd.DataFrame(columns, copy=False)
        del columns
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows]
        del frame


def _csv_chunks(
    f, path: str, rows: int, text_columns: tuple[str, ...], numeric_columns: tuple[str, ...]
) -> Iterator[pd.DataFrame]:
    try:
        header = pd.read_csv(f, header=None, nrows=1, dtype=str).iloc[0].tolist()
    except pd.errors.EmptyDataError:
        return  # not even a header row: no chunks (the scorer says what the file needs)
    check_unique_header([str(h) for h in header], path)
    f.seek(0)
    text = {c: str for c in text_columns if c in header}
    with pd.read_csv(f, chunksize=rows, dtype=text or None) as reader:
        for chunk in reader:
            chunk.columns = [str(c) for c in chunk.columns]
            for name in numeric_columns:
                if name in chunk.columns and chunk[name].dtype == object:
                    numbers = pd.to_numeric(chunk[name], errors="coerce")
                    chunk[name] = chunk[name].where(numbers.isna(), numbers)
            yield chunk
