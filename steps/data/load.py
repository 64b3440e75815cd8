"""Load a bundled scikit-learn dataset or a CSV/Parquet file into a `Dataset`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Annotated

import pandas as pd
from sklearn import datasets as sk_datasets
from zenml import step
from zenml.io import fileio

from core.errors import ConfigError, DataValidationError, is_interrupt
from core.schema import id_like_columns
from core.specs import BUNDLED_DATASETS, DataSpec
from materializers.dataset import Dataset, read_parquet

BUNDLED_TARGET = "target"
logger = logging.getLogger(__name__)


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV or Parquet file from a local path or any artifact-store URI."""
    if not fileio.exists(path):
        raise ConfigError(
            f"Data file not found: {path}. Pass an existing CSV/Parquet path or URI, or a bundled "
            f"dataset name ({', '.join(BUNDLED_DATASETS)})."
        )
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in {".parquet", ".pq", ".csv", ".txt", ""}:
        raise ConfigError(f"Cannot read {path}: use a .csv or .parquet file.")
    with read_errors_explained(path, suffix in {".parquet", ".pq"}), fileio.open(path, "rb") as f:
        if suffix in {".parquet", ".pq"}:
            frame = read_parquet(path if os.path.exists(path) else f)
        else:
            header = pd.read_csv(f, header=None, nrows=1, dtype=str).iloc[0].tolist()
            check_unique_header([str(h) for h in header], path)
            f.seek(0)
            frame = pd.read_csv(f)
    check_unique_header([str(c) for c in frame.columns], path)
    return frame


@contextlib.contextmanager
def read_errors_explained(path: str, parquet: bool) -> Iterator[None]:
    """Turn pandas'/pyarrow's errors while reading `path` into one clear DataValidationError
    (used by training's load and the batch scorer's chunked reads alike)."""
    try:
        yield
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path} is empty: it needs a header row and data rows.") from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataValidationError(
            f"{path} is not a readable CSV file ({type(exc).__name__}: {str(exc)[:120]}). "
            "Save it as UTF-8 CSV with a header row, or as Parquet."
        ) from exc
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        if not parquet:
            raise
        raise DataValidationError(
            f"{path} is not a readable Parquet file ({str(exc)[:120]}). Write it with "
            "pandas' DataFrame.to_parquet, or save it as UTF-8 CSV with a header row."
        ) from exc


def check_unique_header(columns: list[str], path: str) -> None:
    """Refuse duplicated column names (pandas would silently rename them `x.1`)."""
    seen, dupes = set(), []
    for column in columns:
        if column in seen and column not in dupes:
            dupes.append(column)
        seen.add(column)
    if dupes:
        raise DataValidationError(
            f"{path} has duplicated column names: {', '.join(repr(d) for d in dupes[:5])}"
            f"{f' and {len(dupes) - 5} more' if len(dupes) > 5 else ''}. Rename or drop the "
            "duplicates so each column has one name; nothing was trained or registered."
        )


def infer_task(labels: pd.Series) -> str:
    """Classification for text, boolean or few-valued integer labels; otherwise regression."""
    values = labels.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    if pd.api.types.is_integer_dtype(values) or (values == values.round()).all():
        return "classification" if values.nunique() <= 20 else "regression"
    return "regression"


def resolve_task(spec: DataSpec) -> str:
    """The task the run will have, reading only the target column of a file."""
    if spec.source in BUNDLED_DATASETS:
        return BUNDLED_DATASETS[spec.source] if spec.task == "auto" else spec.task
    if spec.task != "auto":
        return spec.task
    labels = read_column(spec.source, spec.target)
    if labels is None:
        return "classification"  # validation names the missing target
    return infer_task(labels)


def read_column(path: str, column: str) -> pd.Series | None:
    """One column of a CSV or Parquet file (None when the file has no such column), read
    without the others; a file that cannot be read this way is read whole (read_table),
    which says what is wrong with it."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        with fileio.open(path, "rb") as f:
            if suffix in {".parquet", ".pq"}:
                import pyarrow.parquet as pq

                parquet = pq.ParquetFile(f)
                if column not in parquet.schema_arrow.names:
                    return None
                return parquet.read(columns=[column]).to_pandas()[column]
            frame = pd.read_csv(f, usecols=lambda name: name == column)
    except Exception as exc:
        if is_interrupt(exc):
            raise
        frame = read_table(path)
    return frame[column] if column in frame.columns else None


def load_dataset(spec: DataSpec) -> Dataset:
    """Build a `Dataset` from the spec; raises `ConfigError` for an unknown name or file."""
    if spec.source in BUNDLED_DATASETS:
        bunch = getattr(sk_datasets, f"load_{spec.source}")(as_frame=True)
        frame = bunch.frame
        target = spec.target or BUNDLED_TARGET
        task = BUNDLED_DATASETS[spec.source] if spec.task == "auto" else spec.task
    else:
        if "/" not in spec.source and "." not in spec.source:
            raise ConfigError(
                f"Unknown dataset '{spec.source}'. Use one of {', '.join(BUNDLED_DATASETS)} or "
                "a path to a CSV/Parquet file."
            )
        frame = read_table(spec.source)
        if not spec.target:
            raise ConfigError(
                f"Which column of {spec.source} is the label? Pass --target COLUMN or set "
                "data.target in the config."
            )
        target = spec.target
        task = spec.task
        if task == "auto":
            task = infer_task(frame[target]) if target in frame.columns else "classification"
    ignored = []
    if spec.features is not None:
        keep = [c for c in frame.columns if c in spec.features or c == target]
        # Columns not listed are left out like row identifiers: the model does not take
        # them, and rows of the same file may still carry them (they are ignored).
        ignored = [str(c) for c in frame.columns if c not in keep]
        # Unknown feature names are kept out of the frame but reported by validation.
        frame = frame[keep]
    frame.columns = [str(c) for c in frame.columns]
    if spec.drop_id_columns:
        found = {
            c: why
            for c, why in id_like_columns(frame, target).items()
            if c not in (spec.features or [])
        }
        if found:
            ignored += list(found)
            logger.warning(
                "Left out %d column(s) that identify rows rather than describe them: %s. "
                "Set data.drop_id_columns: false (or list them in data.features) to keep them.",
                len(found),
                "; ".join(f"'{c}' ({why})" for c, why in found.items()),
            )
            frame = frame.drop(columns=list(found))
    return Dataset(
        frame=frame.reset_index(drop=True),
        target=target,
        task=task,
        name=spec.source,
        ignored_columns=ignored,
    )


@step
def load_data(spec: DataSpec) -> Annotated[Dataset, "raw_dataset"]:
    """Load the configured dataset with its target and task."""
    return load_dataset(spec)
