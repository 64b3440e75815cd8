"""`shared_volume` artifact store flavor: a folder every pod mounts at the same path.

A Kubernetes cluster can give every step pod the same ReadWriteMany volume (NFS, a
PVC) at one absolute path. ZenML's `local` artifact store would work there, but ZenML
refuses local components on a remote orchestrator; this flavor says what it is: a
path that is shared, not local to one machine. zenkube's Kubeflow parity tests use it
to stand in for the cluster's bucket when they replay compiled tasks as pods.
"""

from __future__ import annotations

from zenml.artifact_stores.local_artifact_store import (
    LocalArtifactStore,
    LocalArtifactStoreConfig,
    LocalArtifactStoreFlavor,
)

from integrations.zenml_adapters.flavors import DeclaredFlavor

FLAVOR_NAME = "shared_volume"


class SharedVolumeArtifactStoreConfig(LocalArtifactStoreConfig):
    """Config of a shared-volume artifact store.

    Attributes:
        path: absolute path where every pod (and this machine) mounts the volume.
    """

    @property
    def is_local(self) -> bool:
        return False


class SharedVolumeArtifactStore(LocalArtifactStore):
    """The local artifact store's file API on a volume shared by all pods."""

    @property
    def local_path(self) -> str | None:
        # Not a path private to this machine: every pod sees the same volume.
        return None


class SharedVolumeArtifactStoreFlavor(DeclaredFlavor, LocalArtifactStoreFlavor):
    """Flavor of the shared-volume artifact store."""

    NAME = FLAVOR_NAME
    CONFIG = SharedVolumeArtifactStoreConfig
    IMPLEMENTATION = f"{__name__}.SharedVolumeArtifactStore"
