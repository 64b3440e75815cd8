"""Evaluation report of a model on the test split: JSON plus an HTML visualization."""

from __future__ import annotations

import html
import os
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer


class EvaluationReport(BaseModel):
    """Metrics of one model on one labelled dataset.

    Attributes:
        task: classification or regression.
        metrics: metric name -> value.
        rows: how many labelled rows were scored.
        dataset_fingerprint: schema fingerprint of the scored data.
        search: validation scores of the hyperparameter search, if any.
        estimator: class path of the estimator.
        baseline: the same metrics for a model that ignores its inputs (mean of the
            labels, or the most frequent class) on the same rows.
    """

    task: str
    metrics: dict[str, float]
    rows: int
    dataset_fingerprint: str = ""
    search: list[dict[str, Any]] = Field(default_factory=list)
    estimator: str = ""
    baseline: dict[str, float] = Field(default_factory=dict)

    def to_html(self) -> str:
        def baseline(name: str) -> str:
            value = self.baseline.get(name)
            return "" if value is None else f"{value:.4f}"

        metric_rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td><td>{baseline(k)}</td></tr>"
            for k, v in self.metrics.items()
        )
        search = ""
        if self.search:
            search = (
                "<h4>Search (validation split)</h4><table border=1 cellpadding=3>"
                + "".join(
                    f"<tr><td>{html.escape(str(s['params']))}</td><td>{s['score']:.4f}</td></tr>"
                    for s in self.search
                )
                + "</table>"
            )
        return (
            "<html><body style='font-family:sans-serif'>"
            f"<h3>{html.escape(self.estimator)} on {self.rows} test rows ({self.task})</h3>"
            f"<table border=1 cellpadding=3><tr><th>metric</th><th>value</th>"
            f"<th>baseline (ignores the inputs)</th></tr>{metric_rows}"
            f"</table>{search}</body></html>"
        )


class EvaluationReportMaterializer(BaseMaterializer):
    """Stores an `EvaluationReport` as `report.json`; metrics become artifact metadata."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvaluationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type[Any]) -> EvaluationReport:
        with self.artifact_store.open(os.path.join(self.uri, "report.json"), "r") as f:
            return EvaluationReport.model_validate_json(f.read())

    def save(self, data: EvaluationReport) -> None:
        with self.artifact_store.open(os.path.join(self.uri, "report.json"), "w") as f:
            f.write(data.model_dump_json())

    def extract_metadata(self, data: EvaluationReport) -> dict[str, Any]:
        return {**data.metrics, "rows": data.rows}

    def save_visualizations(self, data: EvaluationReport) -> dict[str, VisualizationType]:
        path = os.path.join(self.uri, "report.html")
        with self.artifact_store.open(path, "w") as f:
            f.write(data.to_html())
        return {path: VisualizationType.HTML}
