"""What every zenkube flavor tells ZenML, said once: its name, its config class and its
implementation (imported on first use: the implementation's module imports the flavor's)."""

from __future__ import annotations

import importlib
from typing import ClassVar


class DeclaredFlavor:
    """A ZenML flavor whose `name`, `config_class` and `implementation_class` are class
    attributes; put it before ZenML's flavor base class."""

    NAME: ClassVar[str]
    CONFIG: ClassVar[type]
    IMPLEMENTATION: ClassVar[str]  # "package.module.Class"

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def config_class(self) -> type:
        return self.CONFIG

    @property
    def implementation_class(self) -> type:
        module, _, cls = self.IMPLEMENTATION.rpartition(".")
        return getattr(importlib.import_module(module), cls)


class NoDocs:
    """Our flavors have no page on docs.zenml.io (ZenML would derive a wrong one)."""

    @property
    def docs_url(self) -> str | None:
        return None

    @property
    def sdk_docs_url(self) -> str | None:
        return None
