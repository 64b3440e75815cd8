"""The base of zenkube's materializers for pydantic reports: the model as one JSON file
in the artifact's folder, plus whatever files the subclass writes beside it."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer


class JsonModelMaterializer(BaseMaterializer):
    """Stores `ASSOCIATED_TYPES[0]` (a pydantic model) as `FILE`, JSON."""

    SKIP_REGISTRATION: ClassVar[bool] = True  # a base: its subclasses register
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS
    FILE: ClassVar[str]

    def path(self, name: str) -> str:
        return os.path.join(self.uri, name)

    def write(self, name: str, text: str) -> None:
        with self.artifact_store.open(self.path(name), "w") as f:
            f.write(text)

    def load(self, data_type: type[Any]) -> Any:
        with self.artifact_store.open(self.path(self.FILE), "r") as f:
            return self.ASSOCIATED_TYPES[0].model_validate_json(f.read())

    def save(self, data: Any) -> None:
        self.write(self.FILE, data.model_dump_json())
