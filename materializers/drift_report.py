"""Drift report: per-column tests, the drifted share and Evidently's HTML report."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer


class ColumnDrift(BaseModel):
    """One column's drift test.

    Attributes:
        column: column name.
        kind: numeric or categorical.
        test: `ks` (two-sample Kolmogorov-Smirnov) or `chi2` (chi-square on frequencies).
        statistic: the test statistic.
        p_value: the test's p-value.
        drifted: p_value below the threshold.
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    drifted: bool


class DriftReport(BaseModel):
    """Drift of a current batch against the champion's training data.

    Attributes:
        columns: one entry per feature column.
        drift_share: share of columns that drifted.
        threshold: p-value below which a column counts as drifted.
        reference_rows / current_rows: sizes compared.
        html: Evidently's HTML report (built on a bounded sample when data is large).
        html_note: what the HTML was built on.
    """

    columns: list[ColumnDrift]
    drift_share: float
    threshold: float
    reference_rows: int
    current_rows: int
    html: str = Field("", repr=False)
    html_note: str = ""

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def summary(self) -> dict[str, Any]:
        return self.model_dump(exclude={"html"})


class DriftReportMaterializer(BaseMaterializer):
    """Stores `summary.json` and `report.html`; the HTML is the dashboard visualization."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS
    # What a Kubeflow task with this output shows in the KFP UI (integrations/kubeflow/ui_outputs)
    KFP_UI: ClassVar[tuple[str, ...]] = ("metrics", "report")

    def load(self, data_type: type[Any]) -> DriftReport:
        with self.artifact_store.open(os.path.join(self.uri, "summary.json"), "r") as f:
            report = DriftReport.model_validate_json(f.read())
        html_path = os.path.join(self.uri, "report.html")
        if self.artifact_store.exists(html_path):
            with self.artifact_store.open(html_path, "r") as f:
                report.html = f.read()
        return report

    def save(self, data: DriftReport) -> None:
        with self.artifact_store.open(os.path.join(self.uri, "summary.json"), "w") as f:
            f.write(data.model_copy(update={"html": ""}).model_dump_json())
        with self.artifact_store.open(os.path.join(self.uri, "report.html"), "w") as f:
            f.write(data.html or "<html><body>No HTML report.</body></html>")

    def extract_metadata(self, data: DriftReport) -> dict[str, Any]:
        return {
            "drift_share": data.drift_share,
            "drifted_columns": ", ".join(data.drifted_columns) or "none",
            "current_rows": data.current_rows,
        }

    def save_visualizations(self, data: DriftReport) -> dict[str, VisualizationType]:
        return {os.path.join(self.uri, "report.html"): VisualizationType.HTML}
