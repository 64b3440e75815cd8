"""A tabular dataset that carries its schema, stored as Parquet through the artifact store."""

from __future__ import annotations

import hashlib
import html
import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from core.schema import CATEGORICAL, DATETIME, NUMERIC, InputSchema, infer_kinds

__all__ = ["CATEGORICAL", "DATETIME", "NUMERIC", "Dataset", "DatasetMaterializer"]


@dataclass
class Dataset:
    """Rows plus what they mean: the target column, the task and the feature schema.

    Attributes:
        frame: the rows (features and, when labelled, the target).
        target: name of the label column.
        task: classification or regression.
        name: where the data came from (dataset name or path).
        schema: feature column -> numeric/categorical/datetime; inferred when not given.
        skipped: why there are no rows to work on (continuous training with nothing to
            retrain); "" for real data.
        new_rows: a retraining set: its last `new_rows` rows are a new labelled batch
            the champion never trained on (the split holds part of them out for the
            gate); 0 otherwise.
        note: what these rows are, in words, for messages ("" for a plain split).
        ignored_columns: columns of the source the model does not take: row identifiers
            and columns data.features did not list (not in the frame; a monitoring batch
            or a request may hold them).
        batches: where the rows came from, in order: parts `{batch, rows, role, run}`
            (the loop's kept rows and what a retraining learned from, steps/data/pool.py);
            empty for rows of one source.
    """

    frame: pd.DataFrame
    target: str
    task: str
    name: str = ""
    schema: dict[str, str] = field(default_factory=dict)
    skipped: str = ""
    new_rows: int = 0
    note: str = ""
    ignored_columns: list[str] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.schema:
            self.schema = infer_kinds(self.frame, self.target)

    @property
    def features(self) -> pd.DataFrame:
        """The feature columns; the frame itself (no copy) when it holds exactly those.
        Treat it as read-only."""
        columns = list(self.schema)
        if list(self.frame.columns) == columns:
            return self.frame
        return self.frame[columns]

    @property
    def labels(self) -> pd.Series | None:
        return self.frame[self.target] if self.target in self.frame.columns else None

    @property
    def input_schema(self) -> InputSchema:
        """The contract a model trained on these rows takes (see `core/schema.py`)."""
        return InputSchema.of(self.frame, self.schema, self.target, self.task, self.ignored_columns)

    @property
    def fingerprint(self) -> str:
        """A short hash of the schema: equal fingerprints mean the same columns and kinds."""
        blob = json.dumps({"schema": self.schema, "target": self.target, "task": self.task})
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class DatasetMaterializer(BaseMaterializer):
    """Stores a `Dataset` as `data.parquet` + `schema.json`, with an HTML preview."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Dataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    # What a Kubeflow task with this output shows in the KFP UI (integrations/kubeflow/ui_outputs)
    KFP_UI: ClassVar[tuple[str, ...]] = ("metrics", "report")

    def _path(self, name: str) -> str:
        return os.path.join(self.uri, name)

    def save(self, data: Dataset) -> None:
        meta = {
            "target": data.target,
            "task": data.task,
            "name": data.name,
            "schema": data.schema,
            "skipped": data.skipped,
            "new_rows": data.new_rows,
            "note": data.note,
            "ignored_columns": data.ignored_columns,
            "batches": data.batches,
        }
        with self.artifact_store.open(self._path("schema.json"), "w") as f:
            json.dump(meta, f)
        with self.artifact_store.open(self._path("data.parquet"), "wb") as f:
            write_parquet(data.frame, f)

    def load(self, data_type: type[Any]) -> Dataset:
        with self.artifact_store.open(self._path("schema.json"), "r") as f:
            meta = json.load(f)
        path = self._path("data.parquet")
        if os.path.exists(path):  # a local artifact store: read the file in place
            frame = read_parquet(path)
        else:
            with self.artifact_store.open(path, "rb") as f:
                frame = read_parquet(f)
        return Dataset(frame=frame, **meta)

    def extract_metadata(self, data: Dataset) -> dict[str, Any]:
        return {
            "rows": len(data.frame),
            "columns": len(data.frame.columns),
            "target": data.target,
            "task": data.task,
            "schema_fingerprint": data.fingerprint,
            "source": data.name,
            **({"batches": data.batches} if data.batches else {}),
        }

    def save_visualizations(self, data: Dataset) -> dict[str, VisualizationType]:
        path = self._path("preview.html")
        with self.artifact_store.open(path, "w") as f:
            f.write(dataset_preview_html(data))
        return {path: VisualizationType.HTML}


CHUNK_ROWS = 100_000


def write_parquet(frame: pd.DataFrame, sink) -> None:
    """Parquet in row groups of CHUNK_ROWS, converted one at a time: a big frame is not
    held twice (pandas and Arrow) while it is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(frame) <= CHUNK_ROWS:
        frame.to_parquet(sink, index=False)
        return
    first = pa.Table.from_pandas(frame.iloc[:CHUNK_ROWS], preserve_index=False)
    # Dictionaries pay off for repeated values (categories), not for measurements; per
    # row group, a float column's failed dictionary attempt would cost ~20% in size.
    dictionary = [f.name for f in first.schema if not pa.types.is_floating(f.type)]
    with pq.ParquetWriter(sink, first.schema, use_dictionary=dictionary) as writer:
        writer.write_table(first)
        for start in range(CHUNK_ROWS, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[start : start + CHUNK_ROWS]
            writer.write_table(
                pa.Table.from_pandas(chunk, schema=first.schema, preserve_index=False)
            )


def read_parquet(source) -> pd.DataFrame:
    """A Parquet file (a path or an open file) as pandas, one column at a time: the peak
    is the frame plus one column, not the file, Arrow's table and the frame at once."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    meta = parquet.schema_arrow.pandas_metadata or {}
    # A stored pandas index (`__index_level_0__`, or a named one) is the row labels, not a
    # column: pandas' own reader makes it the index, and rows are relabelled 0..n anyway.
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    names = [n for n in parquet.schema_arrow.names if n not in index]
    if len(names) <= 1:
        return parquet.read(columns=names).to_pandas().reset_index(drop=True)
    columns = {}
    for name in names:
        part = parquet.read(columns=[name]).to_pandas(self_destruct=True)
        columns[name] = part[name].reset_index(drop=True)
    return pd.DataFrame(columns, copy=False)


def dataset_preview_html(data: Dataset, rows: int = 20) -> str:
    """A self-contained HTML page: schema table and the first rows."""
    schema_rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{k}</td></tr>" for c, k in data.schema.items()
    )
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<h3>{html.escape(data.name or 'dataset')}: {len(data.frame)} rows, "
        f"{len(data.frame.columns)} columns, target <code>{html.escape(data.target)}</code> "
        f"({data.task})</h3>"
        f"<p>schema fingerprint <code>{data.fingerprint}</code></p>"
        f"<table border=1 cellpadding=3><tr><th>column</th><th>kind</th></tr>{schema_rows}</table>"
        f"<h4>First {rows} rows</h4>{data.frame.head(rows).to_html(border=1)}"
        "</body></html>"
    )
