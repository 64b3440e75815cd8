"""Fixes for ZenML 0.98's Kubeflow orchestrator, applied by zenkube before it submits.

Decisions (see docs/kubeflow.md):
- kfp 2.17 rejects ZenML's `.after(<component>)` on any pipeline with dependencies:
  we **pin** `kfp>=2.16,<2.17` (pyproject) instead of rewriting ZenML's graph code.
- `ResourceSettings(memory=...)` crashes compilation: ZenML passes a float where KFP
  wants a Kubernetes quantity string. We **fix** it here: memory becomes "<n>Mi".
"""

from __future__ import annotations

from zenml.integrations.kubeflow.orchestrators import kubeflow_orchestrator as _ko

_ORIGINAL = _ko.KubeflowOrchestrator._configure_container_resources


def memory_quantity(resource_settings) -> str | None:
    """ResourceSettings memory as a Kubernetes quantity ("512Mi"), or None."""
    from zenml.config.resource_settings import ByteUnit

    if not resource_settings or not resource_settings.memory:
        return None
    mebibytes = resource_settings.get_memory(ByteUnit.MIB)
    return f"{int(round(mebibytes))}Mi"


def _configure_container_resources(
    self, dynamic_component, resource_settings, node_selector_constraint=None
):
    memory = memory_quantity(resource_settings)
    if memory is not None:
        # Let ZenML apply CPU/GPU/node selectors without the memory it mishandles.
        resource_settings = resource_settings.model_copy(update={"memory": None})
    task = _ORIGINAL(self, dynamic_component, resource_settings, node_selector_constraint)
    if memory is not None:
        task = task.set_memory_limit(memory).set_memory_request(memory)
    return task


def apply() -> None:
    """Install the fixes (idempotent)."""
    _ko.KubeflowOrchestrator._configure_container_resources = _configure_container_resources
