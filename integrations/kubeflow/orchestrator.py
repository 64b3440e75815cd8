"""The `zenkube_kubeflow` orchestrator: ZenML's, with memory given to KFP as a quantity."""

from __future__ import annotations

from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import KubeflowOrchestrator

from integrations.kubeflow.flavors import memory_quantity


class ZenkubeKubeflowOrchestrator(KubeflowOrchestrator):
    def _configure_container_resources(
        self, dynamic_component, resource_settings, node_selector_constraint=None
    ):
        memory = memory_quantity(resource_settings)
        if memory is not None:
            # ZenML applies CPU/GPU/node selectors; the memory it mishandles is set here.
            resource_settings = resource_settings.model_copy(update={"memory": None})
        task = super()._configure_container_resources(
            dynamic_component, resource_settings, node_selector_constraint
        )
        if memory is not None:
            task = task.set_memory_limit(memory).set_memory_request(memory)
        return task
