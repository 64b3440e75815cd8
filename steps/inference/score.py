"""Score a file in process with one model version, a chunk at a time: check each chunk
against the model's input contract (the served model's own checks and reasons), predict,
and write the predictions as Parquet row groups. Memory holds one chunk and the drift
sample, whatever the file's length."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from zenml import log_metadata, step
from zenml.io import fileio

from core.errors import ConfigError, DataValidationError
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from integrations.seldon_local.runtime import validation
from materializers.dataset import Dataset
from steps.inference.chunks import check_readable, no_rows, read_chunks
from steps.monitoring.batch import PREDICTION

logger = logging.getLogger(__name__)

ROW_ID = "row_id"
PROBABILITY = "probability"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SCORED_AT = "scored_at"
# The Parquet key-value metadata entry that describes a predictions file (see `scored_file`).
METADATA_KEY = b"zenkube"
PROGRESS = "zenkube progress"  # app/console.py shows these records as progress lines
PROGRESS_EVERY = 5.0  # seconds between progress lines


class ScoredBatch(BaseModel):
    """What a batch-inference run wrote.

    Attributes:
        input_path / output_path: the file scored and the predictions file written.
        rows / chunks: rows scored, and in how many chunks.
        model_name / model_version: the version that scored every row.
        id_column: the input column the row ids come from ("" for row positions).
        probability: whether the predictions carry the predicted class's probability.
        scored_at: when scoring started (UTC, ISO 8601; the `scored_at` column).
        seconds: time spent reading, checking, scoring and writing.
        drift_rows: rows in the sample the drift check uses (all rows when as many).
    """

    input_path: str
    output_path: str
    rows: int
    chunks: int
    model_name: str
    model_version: str
    id_column: str = ""
    probability: bool = False
    scored_at: str = ""
    seconds: float = 0.0
    drift_rows: int = 0


@dataclass
class ScoringModel:
    """A model version loaded for scoring, with the input columns its signature declares
    and the training file's columns it left out (`passed_over`: a file may hold them)."""

    model: Any
    columns: list[validation.Column]
    name: str
    version: str
    passed_over: tuple[str, ...] = ()


def load_scoring_model(registered: RegisteredModel) -> ScoringModel:
    """Download the version's model files once and load them as the model servers do:
    the columns from its MLmodel signature, the scikit-learn model itself."""
    import mlflow

    mlflow_registry.configure_from_stack()
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=registered.artifact_location or registered.model_uri,
        dst_path=tempfile.mkdtemp(prefix="zenkube-score-"),
    )
    return ScoringModel(
        model=mlflow_registry.load_model(folder),
        columns=validation.read_schema(folder),
        name=registered.name,
        version=registered.version,
        passed_over=validation.read_passed_over(folder),
    )


def _predicts_most_probable(model) -> bool:
    """True when the model's `predict` is the class of highest `predict_proba` (trees and
    forests define it so), so one pass gives both."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    final = model[-1] if isinstance(model, Pipeline) else model
    return (
        isinstance(final, RandomForestClassifier | ExtraTreesClassifier | DecisionTreeClassifier)
        and getattr(final, "n_outputs_", 1) == 1
    )


class Scorer:
    """`predict` gives (the model's predictions, the predicted class's probability or None)."""

    def __init__(self, model):
        self.model = model
        self.has_probability = hasattr(model, "predict_proba") and hasattr(model, "classes_")
        self.one_pass = self.has_probability and _predicts_most_probable(model)

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.has_probability:
            return np.asarray(self.model.predict(frame)), None
        proba = self.model.predict_proba(frame)
        if self.one_pass:
            index = proba.argmax(axis=1)
            predictions = self.model.classes_.take(index)
        else:
            predictions = np.asarray(self.model.predict(frame))
            index = np.searchsorted(self.model.classes_, predictions)
        return predictions, proba[np.arange(len(index)), index]


def check_chunk(
    chunk: pd.DataFrame,
    columns: list[validation.Column],
    passed_over: set[str],
    first_row: int,
    ignored: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The chunk's feature columns, typed and in the model's order, checked as a served
    request is (`validation.check_names`, `validation.typed_frame`): the same refusals and
    reasons, with the file's row numbers. Columns in `passed_over` (the id, the label)
    are not features; nor are `ignored` ones (the model's target and the row identifiers
    training left out), which a served request may carry too."""
    names = [c for c in chunk.columns if c not in passed_over]
    try:
        dropped = validation.check_names(names, [c.name for c in columns], ignored)
    except validation.BadRequest as exc:
        hint = " (name a row-id column with --id-column)" if "unknown column" in str(exc) else ""
        raise validation.BadRequest(f"{exc}{hint}") from None
    names = [n for n in names if n not in dropped]
    features = chunk.drop(columns=[c for c in chunk.columns if c not in names])  # a new frame
    for name in names:
        if pd.api.types.is_datetime64_any_dtype(features[name]):
            # As zenkube's client sends a date: ISO text (integrations/seldon_local/client).
            features[name] = features[name].map(lambda v: v.isoformat() if pd.notna(v) else None)
    return validation.typed_frame(features, columns, first_row)


def row_ids(chunk: pd.DataFrame, id_column: str, first_row: int) -> pd.Series | np.ndarray:
    """The chunk's row ids: the id column's values, else positions in the file from 0."""
    if not id_column:
        return np.arange(first_row, first_row + len(chunk), dtype=np.int64)
    ids = chunk[id_column]
    if ids.isna().any():
        row = int(np.argmax(ids.isna().to_numpy())) + first_row
        raise validation.BadRequest(
            f"the id column '{id_column}' is empty in row {row}: every row needs an id"
        )
    return ids


class UniformSample:
    """At most `size` rows of a stream of chunks, each row equally likely (the rows with
    the `size` smallest random keys), in file order; memory holds the sample and a chunk."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.frame: pd.DataFrame | None = None
        self.keys = np.empty(0)

    def add(self, chunk: pd.DataFrame) -> None:
        keys = self.rng.random(len(chunk))
        if len(self.keys) >= self.size:  # only rows that beat the sample's largest key
            hit = keys < self.keys.max()
            chunk, keys = chunk[hit], keys[hit]
        keys = np.concatenate([self.keys, keys])
        frame = chunk if self.frame is None else pd.concat([self.frame, chunk], ignore_index=True)
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size)[: self.size])
            frame, keys = frame.iloc[keep], keys[keep]
        self.frame, self.keys = frame.reset_index(drop=True), keys


class PredictionWriter:
    """Parquet row groups into a temporary file beside `path`, put in place by `commit`:
    a failed or interrupted run leaves any earlier predictions file as it was."""

    def __init__(self, path: str, metadata: dict[str, Any]):
        self.path = path
        self.partial = f"{path}.partial-{uuid.uuid4().hex[:8]}"
        self.metadata = metadata
        self.writer = None
        self.schema = None
        self.file = None

    def write(self, table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.schema = table.schema.with_metadata(
                {METADATA_KEY: json.dumps(self.metadata).encode()}
            )
            folder = os.path.dirname(self.path)
            if folder and not fileio.exists(folder):
                fileio.makedirs(folder)
            self.file = fileio.open(self.partial, "wb")
            self.writer = pq.ParquetWriter(self.file, self.schema)
        self.writer.write_table(table.cast(self.schema))

    def commit(self) -> None:
        self._close()
        fileio.rename(self.partial, self.path, overwrite=True)

    def abort(self) -> None:
        self._close()
        if fileio.exists(self.partial):
            fileio.remove(self.partial)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.file is not None:
            self.file.close()
            self.file = None


def predictions_table(
    ids,
    features: pd.DataFrame,
    columns: list[validation.Column],
    predictions: np.ndarray,
    probability: np.ndarray | None,
    model: ScoringModel,
    scored_at: np.datetime64,
):
    """One chunk's output: row id, the checked features, prediction, probability (when the
    model has one), model name and version, and when it was scored."""
    import pyarrow as pa

    rows = len(features)
    kinds = {c.name: pa.float64() if c.numeric else pa.bool_() if c.boolean else pa.string()
             for c in columns}  # fmt: skip
    data = {ROW_ID: pa.array(ids, from_pandas=True)}
    for name in features.columns:
        data[name] = pa.array(features[name], type=kinds[name], from_pandas=True)
    data[PREDICTION] = pa.array(predictions, from_pandas=True)
    if probability is not None:
        data[PROBABILITY] = pa.array(probability, type=pa.float64())
    data[MODEL_NAME] = pa.array(np.full(rows, model.name, dtype=object), type=pa.string())
    data[MODEL_VERSION] = pa.array(np.full(rows, model.version, dtype=object), type=pa.string())
    data[SCORED_AT] = pa.array(np.full(rows, scored_at), type=pa.timestamp("us", tz="UTC"))
    return pa.table(data)


def score_file(
    model: ScoringModel,
    input_path: str,
    output_path: str,
    id_column: str = "",
    chunk_rows: int = 100_000,
    drift_rows: int = 100_000,
    passed_over: tuple[str, ...] = (),
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[ScoredBatch, pd.DataFrame]:
    """Score every row of `input_path` into `output_path`; return what was written and a
    uniform sample of at most `drift_rows` checked feature rows (for the drift check).

    Any chunk that cannot be scored stops the run with the served model's reason and the
    file's row numbers; nothing is written. `progress(rows, chunks, seconds)` is called
    after each chunk."""
    check_output(input_path, output_path)
    check_readable(input_path)
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    scored_at = np.datetime64(now, "us")
    scorer = Scorer(model.model)
    sample = UniformSample(drift_rows)
    text = tuple(c.name for c in model.columns if not c.numeric and not c.boolean)
    numeric = tuple(c.name for c in model.columns if c.numeric)
    ids_as_text = (id_column,) if id_column else ()
    skipped = {c for c in (id_column, *passed_over) if c}
    metadata = {
        "input": input_path,
        "id_column": id_column,
        "model_name": model.name,
        "model_version": model.version,
        "features": [c.name for c in model.columns],
        "scored_at": now.isoformat() + "Z",
    }
    writer = PredictionWriter(output_path, metadata)
    rows = chunks = 0
    header = None
    try:
        for chunk in read_chunks(input_path, chunk_rows, text + ids_as_text, numeric):
            if header is None:
                header = [str(c) for c in chunk.columns]
            if not len(chunk):  # a CSV's header row with no rows under it
                continue
            if not chunks and id_column and id_column not in chunk.columns:
                raise ConfigError(
                    f"{input_path} has no column '{id_column}' (--id-column); its columns are "
                    f"{validation.listing(map(str, chunk.columns))}."
                )
            try:
                features = check_chunk(chunk, model.columns, skipped, rows, model.passed_over)
                ids = row_ids(chunk, id_column, rows)
                validation.one_warning_filter()  # as the servers do before each predict
                predictions, probability = validation.predict_or_400(scorer, features)
            except validation.BadRequest as exc:
                raise DataValidationError(
                    f"Rows {rows:,}–{rows + len(chunk) - 1:,} of {input_path} cannot be scored "
                    f"by {model.name} v{model.version}: {exc}. Nothing was written to "
                    f"{output_path}; fix those rows (an empty cell is a missing value, which "
                    "the model fills in) and score again."
                ) from None
            writer.write(
                predictions_table(
                    ids, features, model.columns, predictions, probability, model, scored_at
                )
            )
            sample.add(features)
            rows += len(chunk)
            chunks += 1
            if progress is not None:
                progress(rows, chunks, time.monotonic() - started)
        if not rows:
            features = [c.name for c in model.columns]
            raise DataValidationError(
                f"{no_rows(input_path, header, features)} Nothing was written to {output_path}."
            )
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    scored = ScoredBatch(
        input_path=input_path,
        output_path=output_path,
        rows=rows,
        chunks=chunks,
        model_name=model.name,
        model_version=model.version,
        id_column=id_column,
        probability=scorer.has_probability,
        scored_at=metadata["scored_at"],
        seconds=time.monotonic() - started,
        drift_rows=len(sample.frame),
    )
    return scored, sample.frame


def check_output(input_path: str, output_path: str) -> None:
    """The predictions go to a Parquet file other than the input."""
    if not output_path:
        raise ConfigError("Where should the predictions go? Pass --output FILE.parquet (or a URI).")
    if os.path.splitext(output_path)[1].lower() not in {".parquet", ".pq"}:
        raise ConfigError(
            f"--output {output_path}: predictions are written as Parquet; name a .parquet file."
        )
    if os.path.abspath(output_path) == os.path.abspath(input_path):
        raise ConfigError("--output is the input file; write the predictions to another file.")


def log_progress(step_name: str) -> Callable[[int, int, float], None]:
    """A progress callback that logs a line at most every PROGRESS_EVERY seconds."""
    last = [0.0]

    def report(rows: int, chunks: int, seconds: float) -> None:
        if seconds - last[0] >= PROGRESS_EVERY:
            last[0] = seconds
            logger.info(
                "%s %s: %s rows scored (%d chunks, %s rows/s)",
                PROGRESS,
                step_name,
                f"{rows:,}",
                chunks,
                f"{rows / max(seconds, 1e-9):,.0f}",
            )

    return report


@step(enable_cache=False)
def score_batch(
    model: RegisteredModel,
    reference: Dataset,
    input_path: str,
    output_path: str,
    id_column: str,
    chunk_rows: int,
    drift_rows: int,
) -> tuple[Annotated[ScoredBatch, "scored_batch"], Annotated[Dataset, "scored_sample"]]:
    """Score the file with the chosen version, in process, chunk by chunk; a chunk the
    served model would refuse stops the run with its reason, and nothing is written."""
    loaded = load_scoring_model(model)
    scored, sample = score_file(
        loaded,
        input_path,
        output_path,
        id_column,
        chunk_rows,
        drift_rows,
        passed_over=(reference.target,),
        progress=log_progress("score_batch"),
    )
    log_metadata(
        {
            "rows": scored.rows,
            "output": scored.output_path,
            "model_version": scored.model_version,
            "rows_per_second": scored.rows / max(scored.seconds, 1e-9),
        }
    )
    return scored, Dataset(
        frame=sample,
        target=reference.target,
        task=reference.task,
        name=f"{input_path} (sample of {len(sample):,} of {scored.rows:,} rows)"
        if len(sample) < scored.rows
        else input_path,
        schema=dict(reference.schema),
    )
