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
        confusion: classifiers only: `labels` and `matrix` (rows: true, columns: predicted).
        roc: binary classifiers only: `fpr`, `tpr`, `thresholds` of the ROC curve.
    """

    task: str
    metrics: dict[str, float]
    rows: int
    dataset_fingerprint: str = ""
    search: list[dict[str, Any]] = Field(default_factory=list)
    estimator: str = ""
    baseline: dict[str, float] = Field(default_factory=dict)
    confusion: dict[str, list] | None = None
    roc: dict[str, list[float]] | None = None

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
        confusion = ""
        if self.confusion:
            labels = [html.escape(str(label)) for label in self.confusion["labels"]]
            head = "".join(f"<th>{label}</th>" for label in labels)
            body = "".join(
                f"<tr><th>{label}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
                for label, row in zip(labels, self.confusion["matrix"], strict=True)
            )
            confusion = (
                "<h4>Confusion matrix (rows: true, columns: predicted)</h4>"
                f"<table border=1 cellpadding=3><tr><th></th>{head}</tr>{body}</table>"
            )
        return (
            "<html><body style='font-family:sans-serif'>"
            f"<h3>{html.escape(self.estimator)} on {self.rows} test rows ({self.task})</h3>"
            f"<table border=1 cellpadding=3><tr><th>metric</th><th>value</th>"
            f"<th>baseline (ignores the inputs)</th></tr>{metric_rows}"
            f"</table>{confusion}{search}</body></html>"
        )


class EvaluationReportMaterializer(BaseMaterializer):
    """Stores an `EvaluationReport` as `report.json`; metrics become artifact metadata."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvaluationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS
    # What a Kubeflow task with this output shows in the KFP UI (integrations/kubeflow/ui_outputs)
    KFP_UI: ClassVar[tuple[str, ...]] = ("metrics", "classification", "report")

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
