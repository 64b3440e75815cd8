"""zenkube's artifact types and their materializers (registered on import)."""

from materializers.dataset import Dataset, DatasetMaterializer
from materializers.evaluation_report import EvaluationReport, EvaluationReportMaterializer

__all__ = ["Dataset", "DatasetMaterializer", "EvaluationReport", "EvaluationReportMaterializer"]
from materializers.drift_report import ColumnDrift, DriftReport, DriftReportMaterializer  # noqa: E402

__all__ += ["ColumnDrift", "DriftReport", "DriftReportMaterializer"]
