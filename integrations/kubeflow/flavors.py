"""zenkube's cluster flavors: ZenML's Kubeflow orchestrator and Seldon model deployer, fixed.

Registered by `python run.py stack up` and named in `stacks/kubeflow.yaml`, so every path
that loads the stack (train, deploy, monitor, compile, and the pods themselves, which load
the same flavor from the image) gets the same fixes; nothing is patched at a call site.

- Kubeflow: ZenML 0.98 passes `ResourceSettings(memory=...)` to KFP as a float, which
  crashes compilation; we give KFP a Kubernetes quantity ("512Mi").
- Seldon: ZenML unpacks `S3ArtifactStore.get_credentials()` as (region, key, secret,
  token) but it returns (key, secret, token, region): with key authentication the Secret
  for Seldon's storage initializer gets no usable keys; we read them in the right order.
- kfp 2.17 rejects ZenML's `.after(<component>)`: `pyproject.toml` pins kfp<2.17 instead.
"""

from __future__ import annotations

from typing import Any

from zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor import (
    KubeflowOrchestratorConfig,
    KubeflowOrchestratorFlavor,
)
from zenml.integrations.seldon.flavors.seldon_model_deployer_flavor import (
    SeldonModelDeployerConfig,
    SeldonModelDeployerFlavor,
)

from integrations.zenml_adapters.flavors import DeclaredFlavor, NoDocs

KUBEFLOW_FLAVOR = "zenkube_kubeflow"
SELDON_FLAVOR = "zenkube_seldon"


def memory_quantity(resource_settings) -> str | None:
    """ResourceSettings memory as a Kubernetes quantity ("512Mi"), or None."""
    from zenml.config.resource_settings import ByteUnit

    if not resource_settings or not resource_settings.memory:
        return None
    return f"{int(round(resource_settings.get_memory(ByteUnit.MIB)))}Mi"


# The Kubernetes Secret (in KFP's namespace) whose bucket keys every task gets as env.
STORAGE_SECRET = "zenkube-s3"
STORAGE_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


class ZenkubeKubeflowOrchestratorConfig(KubeflowOrchestratorConfig):
    """ZenML's Kubeflow orchestrator config, plus how the pods reach the bucket.

    Attributes:
        storage_secret: a Kubernetes Secret in the KFP namespace with the keys
            `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; every task gets them as env
            (KFP's `secretAsEnv`), which is what MLflow (boto3) and ZenML's artifact store
            (s3fs) read when they write the bucket. A pod whose Secret is missing does not
            start (CreateContainerConfigError). Empty: no Secret, the pods use their own
            identity (IAM role for the service account / workload identity).
    """

    storage_secret: str = STORAGE_SECRET


class ZenkubeKubeflowOrchestratorFlavor(DeclaredFlavor, NoDocs, KubeflowOrchestratorFlavor):
    """ZenML's Kubeflow orchestrator with memory settings KFP accepts."""

    NAME = KUBEFLOW_FLAVOR
    CONFIG = ZenkubeKubeflowOrchestratorConfig
    IMPLEMENTATION = "integrations.kubeflow.orchestrator.ZenkubeKubeflowOrchestrator"


class ZenkubeSeldonModelDeployerConfig(SeldonModelDeployerConfig):
    """ZenML's Seldon deployer config, plus where Seldon's request logger sends traffic.

    Attributes:
        request_logger_url: the traffic sink (`python -m core.traffic.sink`, see
            docs/kubeflow.md), e.g. `http://zenkube-traffic-sink.zenkube`; every
            SeldonDeployment's graph then logs requests and responses to
            `<url>/<model name>`. Empty: no request logger.
    """

    request_logger_url: str = ""


class ZenkubeSeldonModelDeployerFlavor(DeclaredFlavor, NoDocs, SeldonModelDeployerFlavor):
    """ZenML's Seldon model deployer with the S3 credentials read in the right order."""

    NAME = SELDON_FLAVOR
    CONFIG = ZenkubeSeldonModelDeployerConfig
    IMPLEMENTATION = "integrations.kubeflow.seldon.ZenkubeSeldonModelDeployer"


FLAVORS: dict[str, tuple[str, Any]] = {
    KUBEFLOW_FLAVOR: ("orchestrator", f"{__name__}.ZenkubeKubeflowOrchestratorFlavor"),
    SELDON_FLAVOR: ("model_deployer", f"{__name__}.ZenkubeSeldonModelDeployerFlavor"),
}
