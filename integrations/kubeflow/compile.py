"""Compile zenkube's pipelines to KFP v2 IR YAML with ZenML's own Kubeflow orchestrator.

ZenML 0.98 has no compile-only mode: its orchestrator compiles, then uploads. We let it
do everything up to the upload and keep the YAML. The YAML names what its tasks load by
id (`--snapshot_id`, the stack), so it runs only against the store that holds them: the
ZenML server compile registered them on (app/compile.py refuses a local store).

What a `pipeline(...)` call does first (zenml/pipelines/pipeline_definition.py,
`Pipeline._run`) is create the snapshot and then a *placeholder run* (`run_utils.
create_placeholder_run`: status initializing, provisioning once submitted), and the store
creates the run's Model version with it (sql_zen_store `_get_or_create_model_version_for_run`).
A compiled pipeline is not run here, so `submit_snapshot` creates the snapshot and submits
it with no placeholder run, as ZenML submits a scheduled snapshot: no run and no model
version is left behind, and the first task of a KFP run creates the ZenML run (by its
orchestrator run id) as it does for every run of a schedule.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core.errors import ConfigError
from integrations.kubeflow.secrets import is_credential, strip_credentials

STORE_TOKEN_SECRET = "zenml-store-credentials"
# The tasks' URL when compiled on a local store (require_server=False: tests of the YAML's
# shape only; run.py compile refuses a local store) and no --zenml-url was given.
STORE_URL_PLACEHOLDER = "https://SET-ZENML-SERVER-URL.invalid"
# The pods' API key for the ZenML server, from the Kubernetes Secret STORE_TOKEN_SECRET.
STORE_KEY_ENV = "ZENML_STORE_API_KEY"
# The image configs/kubeflow/*.yaml name unless ZENKUBE_IMAGE is set: nothing is there.
DEFAULT_IMAGE = "localhost:5000/zenkube:0.1.0"


def check_store_url(url: str) -> str:
    """The ZenML server URL the tasks reach, refused when it cannot be written into YAML.

    Every task's env holds it in plain text (dozens of copies in one file), so a URL with
    credentials in it (`https://user:password@host`) is refused, not stripped: the pods
    authenticate with an API key from a Kubernetes Secret.
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        shown = parts._replace(netloc=f"***@{parts.hostname or ''}").geturl()
        raise ConfigError(
            f"--zenml-url holds credentials ({shown}): the compiled YAML would carry them "
            "in plain text in every task's env. Pass the server's URL alone "
            f"(--zenml-url {parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}); the pods "
            f"authenticate with an API key from the Kubernetes Secret '{STORE_TOKEN_SECRET}' "
            f"(key {STORE_KEY_ENV}; docs/kubeflow.md shows how to create it)."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--zenml-url {url!r} is not a ZenML server URL: pass http(s)://HOST[:PORT] "
            "(what `zenml login` connects to)."
        )
    return url


def images(documents: list[dict]) -> list[str]:
    """The container images the compiled pipeline's tasks run, each once."""
    found = []
    for executor in documents[0].get("deploymentSpec", {}).get("executors", {}).values():
        image = executor.get("container", {}).get("image")
        if image and image not in found:
            found.append(image)
    return found


@contextlib.contextmanager
def compile_only() -> Iterator[list[str]]:
    """While active, Kubeflow submissions write their YAML and stop before the upload."""
    from zenml.integrations.kubeflow.orchestrators.kubeflow_orchestrator import (
        KubeflowOrchestrator,
    )
    from zenml.stack.stack import Stack

    compiled: list[str] = []
    original_upload = KubeflowOrchestrator._upload_and_run_pipeline
    original_remote = Stack.requires_remote_server
    original_prepare = Stack.prepare_pipeline_submission

    def prepare_without_secret_values(self, snapshot):
        # Compiling needs no secret values (pods resolve references at run time).
        self.validate(fail_if_secrets_missing=False)

    def keep_yaml(self, snapshot, pipeline_file_path, run_name):
        compiled.append(pipeline_file_path)
        return None

    KubeflowOrchestrator._upload_and_run_pipeline = keep_yaml
    Stack.requires_remote_server = property(lambda self: False)
    Stack.prepare_pipeline_submission = prepare_without_secret_values
    try:
        yield compiled
    finally:
        KubeflowOrchestrator._upload_and_run_pipeline = original_upload
        Stack.requires_remote_server = original_remote
        Stack.prepare_pipeline_submission = original_prepare


def submit_snapshot(pipeline_obj, kwargs: dict[str, Any]):
    """`pipeline_obj(**kwargs)` without the placeholder run (module docstring): prepare,
    create the snapshot, submit it (in `compile_only`, the orchestrator writes the YAML and
    stops). Returns the snapshot the YAML's tasks load."""
    from zenml.client import Client
    from zenml.execution.pipeline.utils import submit_pipeline

    pipeline_obj.prepare(**kwargs)
    snapshot = pipeline_obj._create_snapshot(**pipeline_obj._run_args)
    submit_pipeline(snapshot=snapshot, stack=Client().active_stack, placeholder_run=None)
    return snapshot


def describe(pipeline_name: str, spec: dict) -> str:
    """What the KFP UI shows as the pipeline's description: where to find it in ZenML/MLflow."""
    from zenml.client import Client

    snapshot = ""
    for executor in spec.get("deploymentSpec", {}).get("executors", {}).values():
        args = executor.get("container", {}).get("args", [])
        if "--snapshot_id" in args:
            snapshot = args[args.index("--snapshot_id") + 1]
            break
    parts = [f"zenkube {pipeline_name}", f"ZenML snapshot {snapshot}" if snapshot else ""]
    tracker = Client().active_stack.experiment_tracker
    if tracker is not None and tracker.flavor == "mlflow":
        uri = tracker.config.tracking_uri or ""
        if uri.startswith("http"):
            parts.append(f"MLflow: {uri.rstrip('/')}/#/experiments (experiment '{pipeline_name}')")
    return "; ".join(p for p in parts if p)


@contextlib.contextmanager
def active_stack(name: str) -> Iterator[None]:
    """Activate a stack for the duration of the block, then restore the previous one."""
    from zenml.client import Client

    client = Client()
    previous = client.active_stack_model.name
    client.activate_stack(name)
    try:
        yield
    finally:
        client.activate_stack(previous)


def portable_store(documents: list[dict], store_url: str | None) -> list[dict]:
    """Point every task at a ZenML server, authenticated with the pods' API key.

    Compiled against a local store, ZenML writes its SQLite file path, driver and backup
    folder into each task's env: useless in a pod. They go; the task gets a REST store
    URL `store_url`. Compiled while connected to a server (`store_url` None keeps its
    URL), ZenML writes the compiling session's own ZENML_STORE_API_TOKEN, which the
    YAML must not carry and a Kubernetes Secret cannot sensibly hold (it is this
    machine's, short-lived or scoped to a run that is not the KFP one): it goes too.
    Either way the task reads STORE_KEY_ENV from the Kubernetes Secret
    STORE_TOKEN_SECRET (a service-account API key), the one key compile tells the user
    to put there.
    """
    spec = documents[0]
    for executor in spec.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container", {})
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        store_type = env.get("ZENML_STORE_TYPE")
        if store_type == "sql":
            if store_url is None:
                continue
            kept = [
                e
                for e in container["env"]
                if not e["name"].startswith(("ZENML_STORE_", "ZENML_SECRETS_STORE_"))
            ]
            kept += [
                {"name": "ZENML_STORE_TYPE", "value": "rest"},
                {"name": "ZENML_STORE_URL", "value": store_url},
            ]
        elif store_type == "rest":
            kept = [
                e
                for e in container["env"]
                if not (e["name"].startswith("ZENML_STORE_") and is_credential(e["name"]))
            ]
            if store_url is not None:
                kept = [e for e in kept if e["name"] != "ZENML_STORE_URL"]
                kept.append({"name": "ZENML_STORE_URL", "value": store_url})
        else:
            continue
        kept.append({"name": STORE_KEY_ENV, "value": "from-secret"})  # moved to a secret below
        container["env"] = kept
    return documents


def compile_pipeline(
    pipeline_obj,
    kwargs: dict[str, Any],
    options: dict[str, Any],
    out: Path,
    store_url: str | None = None,
) -> Path:
    """Compile one pipeline; write its sanitized YAML to `out`; return the path.

    `store_url` replaces the store in the tasks' env (see `portable_store`); None keeps
    the connected server's URL (or, with a local store, ZenML's own env).
    """
    # Nothing runs here, so there are no pipeline logs to ship to the (remote) bucket.
    options = {"enable_pipeline_logs": False, **options}
    with compile_only() as compiled:
        submit_snapshot(pipeline_obj.with_options(**options), kwargs)
    if not compiled:
        raise RuntimeError(f"{pipeline_obj.name}: the Kubeflow orchestrator wrote no YAML")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(compiled[-1], out)
    documents = list(yaml.safe_load_all(out.read_text()))
    documents[0].setdefault("pipelineInfo", {})["description"] = describe(
        pipeline_obj.name, documents[0]
    )
    documents = portable_store(documents, store_url)
    cleaned = strip_credentials(documents, STORE_TOKEN_SECRET)
    out.write_text(yaml.safe_dump_all(cleaned, sort_keys=False))
    return out
