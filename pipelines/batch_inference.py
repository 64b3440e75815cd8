"""Batch inference: choose the version → score a file chunk by chunk → drift of the scored rows."""

from zenml import pipeline

from core.specs import MonitoringThresholds
from steps.inference import choose_model, score_batch
from steps.monitoring import detect_drift


@pipeline(enable_cache=False)
def batch_inference_pipeline(
    model_name: str,
    input_path: str,
    output_path: str,
    thresholds: MonitoringThresholds,
    version: str = "",
    id_column: str = "",
    chunk_rows: int = 100_000,
    drift_rows: int = 100_000,
) -> None:
    """Score a CSV/Parquet file with the champion (or a named version) in process, write
    the predictions as Parquet, and check the scored rows for drift against its training data."""
    model, reference = choose_model(model_name, version)
    _, sample = score_batch(
        model, reference, input_path, output_path, id_column, chunk_rows, drift_rows
    )
    detect_drift(reference, sample, thresholds)
