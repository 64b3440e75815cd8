"""Batch inference: score a file with a model version in process (the `batch_inference`
pipeline), and turn labels that arrive later into a labelled batch for the loop."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import runner
from app.config import load_run_config
from core.errors import ConfigError, DataValidationError
from core.paths import zenkube_home


@dataclass
class BatchResult:
    """What a batch-inference run wrote and found."""

    run_name: str
    scored: Any  # steps.inference.score.ScoredBatch
    drift: Any  # materializers.drift_report.DriftReport
    report_path: str


def predict(
    config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> BatchResult:
    """Run the batch-inference pipeline; return what it wrote and the drift it found."""
    from steps.inference.chunks import check_readable
    from steps.inference.score import check_output

    run_config = load_run_config("batch_inference", config, overrides)
    params = run_config.params
    if not params.input_path:
        raise ConfigError("Which file? Pass --input FILE (CSV or Parquet, a path or a URI).")
    check_output(params.input_path, params.output_path)  # before the run: clearer, faster
    check_readable(params.input_path)
    from steps.inference import score_batch
    from steps.monitoring import detect_drift

    run = runner.finished_run(runner.run_pipeline(run_config))
    drift = runner.output_artifact(run, detect_drift)
    return BatchResult(
        run_name=run.name,
        scored=runner.output(run, score_batch, "scored_batch"),
        drift=drift.load(),
        report_path=f"{drift.uri}/report.html",
    )


def render(result: BatchResult, echo: Callable[..., None]) -> None:
    """The batch run in zenkube's words (echo takes `fg=` like click.secho)."""
    s, d = result.scored, result.drift
    rate = s.rows / max(s.seconds, 1e-9)
    echo(f"\nBatch run:    {result.run_name}")
    echo(
        f"Scored:       {s.rows:,} rows of {s.input_path} in {s.seconds:.1f}s ({rate:,.0f} rows/s)"
    )
    echo(f"Model:        {s.model_name} v{s.model_version}")
    probability = ", probability" if s.probability else ""
    ids = f"row_id from '{s.id_column}'" if s.id_column else "row_id (row position)"
    echo(f"Predictions:  {s.output_path} ({ids}, prediction{probability}, model, version, time)")
    sampled = f", a uniform sample of {s.drift_rows:,} rows" if s.drift_rows < s.rows else ""
    drifted = f": {', '.join(d.drifted_columns)}" if d.drifted_columns else ""
    echo(
        f"Drift:        {len(d.drifted_columns)} of {len(d.columns)} columns "
        f"({d.drift_share:.0%}){drifted}{sampled}",
        fg="yellow" if d.drift_share >= d.share_threshold else None,
    )
    echo(f"Drift report: {result.report_path}")
    echo(
        f"Labels later: python run.py monitor --predictions {s.output_path} --labels LABELS "
        f"(a CSV/Parquet file of row_id and the label)"
    )


def predictions_metadata(path: str) -> dict[str, Any]:
    """What `run.py predict --output` recorded in a predictions file (its Parquet metadata)."""
    import pyarrow.parquet as pq
    from zenml.io import fileio

    from steps.inference.score import METADATA_KEY

    if not fileio.exists(path):
        raise ConfigError(f"Predictions file not found: {path}.")
    try:
        with fileio.open(path, "rb") as f:
            metadata = pq.ParquetFile(f).schema_arrow.metadata or {}
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path} is not a readable Parquet file ({exc}).") from exc
    if METADATA_KEY not in metadata:
        raise ConfigError(
            f"{path} was not written by `python run.py predict --output`: it has no record of "
            "the model and the rows it scored. Score the batch with it first."
        )
    return json.loads(metadata[METADATA_KEY])


def _as_keys(ids) -> Any:
    """Row ids as text, so 7, 7.0 (a CSV column with gaps) and "7" join."""
    import pandas as pd

    if pd.api.types.is_float_dtype(ids) and (ids.dropna() == ids.dropna().round()).all():
        ids = ids.astype("Int64")
    return ids.astype(str)


def labelled_batch(predictions: str, labels: str, model_name: str | None) -> tuple[str, str, str]:
    """The scored rows that have a label, as a batch for `monitor`: features from the
    predictions file (the input is not read again), labels joined by row id.

    Returns (batch file, model name, what it holds)."""
    import pandas as pd
    import pyarrow.parquet as pq
    from zenml.io import fileio

    from integrations.mlflow import champion
    from steps.data.load import read_table
    from steps.inference.score import ROW_ID
    from steps.monitoring.batch import champion_artifacts

    meta = predictions_metadata(predictions)
    name = model_name or meta["model_name"]
    if name != meta["model_name"]:
        raise ConfigError(
            f"{predictions} was scored by '{meta['model_name']}', not '{name}'; leave out "
            "--model-name or pass that one."
        )
    reference, _ = champion_artifacts(name)
    target = reference.target
    given = read_table(labels)
    id_column = next((c for c in (meta["id_column"], ROW_ID) if c and c in given.columns), None)
    if id_column is None or target not in given.columns:
        wanted = f"'{meta['id_column'] or ROW_ID}'"
        raise DataValidationError(
            f"{labels} needs the row id column {wanted} and the label column '{target}'; it "
            f"has {', '.join(map(str, given.columns[:8]))}. Write one row per label: the "
            f"row_id the predictions file gives the row, and its label."
        )
    given = given[[id_column, target]].dropna(subset=[target])
    keys = _as_keys(given[id_column])
    if keys.duplicated().any():
        raise DataValidationError(
            f"{labels} gives row id {keys[keys.duplicated()].iloc[0]!r} more than one label; "
            "keep one label per row."
        )
    label_of = pd.Series(given[target].to_numpy(), index=keys.to_numpy())
    features = meta["features"]
    parts = []
    with fileio.open(predictions, "rb") as f:  # a batch at a time: only labelled rows stay
        for batch in pq.ParquetFile(f).iter_batches(columns=[ROW_ID, *features]):
            chunk = batch.to_pandas()
            chunk_keys = _as_keys(chunk[ROW_ID])
            hit = chunk_keys.isin(label_of.index).to_numpy()
            if hit.any():
                rows = chunk.loc[hit, features].reset_index(drop=True)
                rows[target] = label_of.loc[chunk_keys[hit]].to_numpy()
                parts.append(rows)
    if not parts:
        raise DataValidationError(
            f"None of the {len(label_of):,} labels in {labels} names a row of {predictions} "
            f"(row ids such as {', '.join(map(repr, list(label_of.index[:3])))}); join on the "
            "row_id column the predictions file gives each row."
        )
    batch = pd.concat(parts, ignore_index=True)
    folder = zenkube_home() / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "labelled-predictions.parquet"
    batch.to_parquet(path, index=False)
    what = (
        f"{len(batch):,} scored rows of {predictions} labelled from {labels} (by "
        f"{meta['id_column'] or ROW_ID})"
    )
    if len(batch) < len(label_of):
        what += f"; {len(label_of) - len(batch):,} labels matched no scored row"
    current = champion.current(name)
    if current is not None and current.version != meta["model_version"]:
        what += (
            f". They were scored by v{meta['model_version']}; the champion is now "
            f"v{current.version}, whose quality is checked"
        )
    return str(path), name, what


def predict_command(
    config: str | None,
    input_path: str,
    output_path: str,
    model_name: str | None,
    version: str | None,
    id_column: str | None,
    echo: Callable[..., None],
) -> BatchResult:
    """`run.py predict --output`: score the file in process and print what was written."""
    echo(f"zenkube: scoring {input_path} in process...")
    overrides = {
        "input_path": input_path,
        "output_path": output_path,
        "model_name": model_name,
        "version": version,
        "id_column": id_column,
    }
    result = predict(config, overrides)
    render(result, echo)
    return result
