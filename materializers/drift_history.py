"""The `drift_history` artifact: `history.json` and its script-free HTML report (the types
live in core/drift_history.py, which `monitor history` uses without ZenML)."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.enums import VisualizationType

from core.drift_history import ColumnPoint, DriftHistory, RunRecord
from materializers.json_model import JsonModelMaterializer

__all__ = ["ColumnPoint", "DriftHistory", "DriftHistoryMaterializer", "RunRecord"]


class DriftHistoryMaterializer(JsonModelMaterializer):
    """Stores `history.json` and `history.html` (the visualization: no script, so it renders
    in ZenML's sandboxed iframe)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftHistory,)
    FILE: ClassVar[str] = "history.json"

    def save(self, data: DriftHistory) -> None:
        super().save(data)
        self.write("history.html", data.to_html())

    def extract_metadata(self, data: DriftHistory) -> dict[str, Any]:
        return {"model_name": data.model_name, "runs": len(data.runs)}

    def save_visualizations(self, data: DriftHistory) -> dict[str, VisualizationType]:
        return {self.path("history.html"): VisualizationType.HTML}
