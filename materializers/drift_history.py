"""The `drift_history` artifact: `history.json` and its script-free HTML report (the types
live in core/drift_history.py, which `monitor history` uses without ZenML)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer

from core.drift_history import ColumnPoint, DriftHistory, RunRecord

__all__ = ["ColumnPoint", "DriftHistory", "DriftHistoryMaterializer", "RunRecord"]


class DriftHistoryMaterializer(BaseMaterializer):
    """Stores `history.json` and `history.html` (the visualization: no script, so it renders
    in ZenML's sandboxed iframe)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftHistory,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type[Any]) -> DriftHistory:
        with self.artifact_store.open(os.path.join(self.uri, "history.json"), "r") as f:
            return DriftHistory.model_validate_json(f.read())

    def save(self, data: DriftHistory) -> None:
        with self.artifact_store.open(os.path.join(self.uri, "history.json"), "w") as f:
            f.write(data.model_dump_json())
        with self.artifact_store.open(os.path.join(self.uri, "history.html"), "w") as f:
            f.write(data.to_html())

    def extract_metadata(self, data: DriftHistory) -> dict[str, Any]:
        return {"model_name": data.model_name, "runs": len(data.runs)}

    def save_visualizations(self, data: DriftHistory) -> dict[str, VisualizationType]:
        return {os.path.join(self.uri, "history.html"): VisualizationType.HTML}
