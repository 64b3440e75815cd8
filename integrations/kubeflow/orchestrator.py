"""The `zenkube_kubeflow` orchestrator: ZenML's, with memory given to KFP as a quantity,
KFP UI outputs on every task (see `ui_outputs`) and a run identity KFP really provides.

Run identity: ZenML's orchestrator (zenml/integrations/kubeflow/orchestrators/
kubeflow_orchestrator.py, `submit_pipeline`) sets `KFP_RUN_ID={{$.pipeline_job_name}}` as
an env *value* and its steps join the ZenML run of that orchestrator run id
(`get_orchestrator_run_id`). KFP's driver copies env values verbatim (kubeflow/pipelines
backend/src/v2/driver/driver.go, `initPodSpecPatch`, the loop over `container.GetEnv()`),
so every pod of every run would read the literal text, and the runs of one recurring run
(one snapshot) would all join one ZenML run. KFP labels every pod of a run, one-off or
scheduled, `pipeline/runid=<run id>` (backend/src/common/util/consts.go
`LabelKeyWorkflowRunId`, set by apiserver/template/v2_template.go and the
ScheduledWorkflow controller's scheduled_workflow.go as pod metadata), so we give
`KFP_RUN_ID` from that label through the downward API (KFP's `fieldPathAsEnv`, which the
driver turns into a `fieldRef` env in backend/src/v2/driver/k8s.go).
"""

from __future__ import annotations

from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
    ENV_KFP_RUN_ID,
    KubeflowOrchestrator,
)

from integrations.kubeflow import ui_outputs
from integrations.kubeflow.flavors import STORAGE_KEYS, memory_quantity

# The label KFP puts on every pod of a run (backend/src/common/util/consts.go).
KFP_RUN_ID_LABEL = "pipeline/runid"
KFP_RUN_ID_FIELD = f"metadata.labels['{KFP_RUN_ID_LABEL}']"


def run_id_from_pod_label(task):
    """Replace ZenML's `KFP_RUN_ID` env value (a placeholder KFP never fills) with the pod's
    `pipeline/runid` label, resolved by the kubelet."""
    from kfp import kubernetes

    env = task.container_spec.env or {}
    env.pop(ENV_KFP_RUN_ID, None)
    task.container_spec.env = env or None
    return kubernetes.use_field_path_as_env(task, ENV_KFP_RUN_ID, KFP_RUN_ID_FIELD)


def s3_endpoint(stack) -> str:
    """The S3-compatible endpoint of the stack's artifact store (`client_kwargs.endpoint_url`,
    e.g. MinIO's), or "" for AWS S3 itself."""
    store = getattr(stack, "artifact_store", None)
    kwargs = getattr(getattr(store, "config", None), "client_kwargs", None) or {}
    return str(kwargs.get("endpoint_url") or "")


def storage_access(task, secret: str, endpoint: str):
    """What a task needs to write the bucket: the keys from the Kubernetes Secret `secret`
    (KFP's `secretAsEnv`; none when empty) and, for an S3-compatible endpoint, MLflow's
    `MLFLOW_S3_ENDPOINT_URL` (ZenML's s3fs takes it from the artifact store's config)."""
    from kfp import kubernetes

    if secret:
        task = kubernetes.use_secret_as_env(task, secret, {k: k for k in STORAGE_KEYS})
    if endpoint:
        task = task.set_env_variable("MLFLOW_S3_ENDPOINT_URL", endpoint)
    return task


class ZenkubeKubeflowOrchestrator(KubeflowOrchestrator):
    def submit_pipeline(self, snapshot, stack, base_environment, step_environments, **kwargs):
        # The components are built per step name; their outputs follow from the snapshot.
        self._zenkube_snapshot, self._zenkube_endpoint = snapshot, s3_endpoint(stack)
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
        # ZenML calls this once per task, after setting the task's env.
        dynamic_component = run_id_from_pod_label(dynamic_component)
        dynamic_component = storage_access(
            dynamic_component,
            getattr(self.config, "storage_secret", ""),
            getattr(self, "_zenkube_endpoint", ""),
        )
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
