"""A ZenML artifact store on fsspec's in-memory filesystem: a real non-local path scheme.

It proves materializers go through the artifact store's file API (a built-in `open()`
on a `memory://` URI would fail).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import uuid4

from fsspec.implementations.memory import MemoryFileSystem
from zenml.artifact_stores import BaseArtifactStore, BaseArtifactStoreConfig
from zenml.enums import StackComponentType


class MemoryArtifactStoreConfig(BaseArtifactStoreConfig):
    SUPPORTED_SCHEMES: ClassVar[set[str]] = {"memory://"}


class MemoryArtifactStore(BaseArtifactStore):
    _fs = MemoryFileSystem()

    def open(self, path, mode: str = "r") -> Any:
        return self._fs.open(path, mode)

    def copyfile(self, src, dst, overwrite: bool = False) -> None:
        self._fs.copy(src, dst)

    def exists(self, path) -> bool:
        return self._fs.exists(path)

    def glob(self, pattern):
        return self._fs.glob(pattern)

    def isdir(self, path) -> bool:
        return self._fs.isdir(path)

    def listdir(self, path):
        return [p.rsplit("/", 1)[-1] for p in self._fs.ls(path, detail=False)]

    def makedirs(self, path) -> None:
        self._fs.makedirs(path, exist_ok=True)

    def mkdir(self, path) -> None:
        self._fs.makedirs(path, exist_ok=True)

    def remove(self, path) -> None:
        self._fs.rm(path)

    def rename(self, src, dst, overwrite: bool = False) -> None:
        self._fs.mv(src, dst)

    def rmtree(self, path) -> None:
        self._fs.rm(path, recursive=True)

    def stat(self, path):
        return self._fs.stat(path)

    def size(self, path):
        return self._fs.size(path)

    def walk(self, top, topdown: bool = True, onerror=None):
        yield from self._fs.walk(top)


def memory_artifact_store() -> MemoryArtifactStore:
    now = datetime.now()
    return MemoryArtifactStore(
        name="memory",
        id=uuid4(),
        config=MemoryArtifactStoreConfig(path="memory://zenkube-tests"),
        flavor="memory",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )
