"""The `zenkube_kubeflow` orchestrator: ZenML's, with memory given to KFP as a quantity and
KFP UI outputs on every task (see `ui_outputs`)."""

from __future__ import annotations

from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import KubeflowOrchestrator

from integrations.kubeflow import ui_outputs
from integrations.kubeflow.flavors import memory_quantity


class ZenkubeKubeflowOrchestrator(KubeflowOrchestrator):
    def submit_pipeline(self, snapshot, stack, base_environment, step_environments, **kwargs):
        # The components are built per step name; their outputs follow from the snapshot.
        self._zenkube_snapshot = snapshot
        try:
            return super().submit_pipeline(
                snapshot, stack, base_environment, step_environments, **kwargs
            )
        finally:
            self._zenkube_snapshot = None

    def _create_dynamic_component(self, image, command, arguments, component_name):
        snapshot = getattr(self, "_zenkube_snapshot", None)
        step = snapshot.step_configurations.get(component_name) if snapshot else None
        kinds = ui_outputs.kinds_for_step(step) if step is not None else [ui_outputs.CARD]
        return ui_outputs.container_component(image, command, arguments, component_name, kinds)

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
