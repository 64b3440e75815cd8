"""Compile every pipeline to KFP v2 IR YAML on the Kubeflow stack (no cluster, no Docker)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from app.config import PIPELINES, load_run_config
from core.errors import ConfigError

# Where compiled monitoring pipelines read their batch unless the run sets `batch`.
DEFAULT_BATCH = "batches/current.parquet"
# Where compiled batch-inference pipelines write unless the run sets `output_path`.
DEFAULT_PREDICTIONS = "predictions/current.parquet"


def local_store_refusal(zenml_url: str | None) -> str:
    """Why compile stops on a local store, and what to do, in one sentence."""
    server = zenml_url or "https://YOUR-ZENML-SERVER"
    zenml = (
        f"ZENML_CONFIG_PATH={os.environ.get('ZENML_CONFIG_PATH', '.zenkube/zenml')} .venv/bin/zenml"
    )
    return (
        "compile registers the stack and the pipelines' snapshots on the ZenML server the "
        "pods report to (the YAML names them by id), but this machine uses a local ZenML "
        f"store no pod can read: connect to the server first (`{zenml} login {server}`, "
        "docs/kubeflow.md section 4) and compile again."
    )


def compile_for_kubeflow(
    out_dir: str | os.PathLike,
    stack: str = "kubeflow",
    echo: Callable[[str], None] = print,
    zenml_url: str | None = None,
    model_name: str | None = None,
    pipelines: list[str] | None = None,
    require_server: bool = True,
) -> dict[str, Path]:
    """Write KFP v2 IR YAML for the pipelines, compiled on the Kubeflow stack `stack`.

    The stack and each pipeline's snapshot are registered on the connected ZenML server,
    which the YAML names by id; no run and no model version is created. The tasks reach
    that server at `zenml_url` (default: the URL this machine connects to; an in-cluster
    address may differ). A local store is refused before anything is registered or
    written (no pod can read it); `require_server=False` compiles on it anyway, for
    checking the YAML's shape only (its ids exist nowhere else; the tasks get a
    placeholder URL). `pipelines` limits which pipelines are compiled (default: all).
    """
    from zenml.client import Client

    from integrations.kubeflow.compile import (
        DEFAULT_IMAGE,
        STORE_TOKEN_SECRET,
        STORE_URL_PLACEHOLDER,
        active_stack,
        check_store_url,
        compile_pipeline,
        images,
    )
    from integrations.kubeflow.validate import load_documents
    from stacks.manage import load_spec, stack_up

    if zenml_url is not None:
        check_store_url(zenml_url)  # before anything is registered or written
    local_store = Client().zen_store.is_local_store()
    if local_store and require_server:
        raise ConfigError(local_store_refusal(zenml_url))
    spec = load_spec(stack)
    # On a server the pods resolve the secrets for real: a missing one is named, not faked.
    changes = stack_up(stack, activate=False, placeholder_secrets=local_store)
    for name in changes.placeholder_secrets:
        echo(
            f"zenkube: created the ZenML secret '{name}' with placeholder values so the stack "
            f"can be compiled; set real values before running on a cluster "
            f"(`zenml secret update {name} ...`)."
        )
    store_url = zenml_url or (STORE_URL_PLACEHOLDER if local_store else None)
    written = {}
    with active_stack(spec["stack_name"]):
        bucket = Client().active_stack.artifact_store.path.rstrip("/")
        for name in pipelines or PIPELINES:
            overrides = {"model_name": model_name} if model_name else None
            config = load_run_config(name, overrides=overrides, stack_kind="kubeflow")
            if hasattr(config.params, "batch") and not config.params.batch:
                config.params.batch = f"{bucket}/{DEFAULT_BATCH}"
            if hasattr(config.params, "input_path") and not config.params.input_path:
                config.params.input_path = f"{bucket}/{DEFAULT_BATCH}"
                config.params.output_path = f"{bucket}/{DEFAULT_PREDICTIONS}"
            out = Path(out_dir) / f"{name}.yaml"
            echo(f"zenkube: compiling the {name} pipeline → {out}")
            written[name] = compile_pipeline(
                config.entry.load(), config.kwargs(), config.zenml_options(), out, store_url
            )
    named = sorted({image for path in written.values() for image in images(load_documents(path))})
    echo(f"zenkube: the tasks run the image {', '.join(named)}")
    if DEFAULT_IMAGE in named:
        echo(
            f"zenkube: warning: {DEFAULT_IMAGE} is the placeholder default, not an image a "
            "cluster can pull: build and push the image (`docker build -t REGISTRY/zenkube:TAG "
            ".`, see docs/kubeflow.md) and compile again with ZENKUBE_IMAGE=REGISTRY/zenkube:TAG."
        )
    if store_url == STORE_URL_PLACEHOLDER:
        echo(
            f"zenkube: the tasks' ZenML server URL is the placeholder {STORE_URL_PLACEHOLDER}: "
            "compile again with --zenml-url https://YOUR-ZENML-SERVER (or after `zenml login`)."
        )
    echo(
        f"zenkube: the pods read their ZenML API key from the Kubernetes Secret "
        f"'{STORE_TOKEN_SECRET}' (key ZENML_STORE_API_KEY): `zenml service-account create "
        "kfp` makes one; docs/kubeflow.md shows the kubectl command."
    )
    return written


def compile_and_check(
    out_dir: str | os.PathLike,
    stack: str,
    echo: Callable[[str], None],
    zenml_url: str | None = None,
    model_name: str | None = None,
    pipelines: list[str] | None = None,
) -> None:
    """Compile, check every file with KFP's own checks, and say where the ids come from."""
    import time

    from zenml.client import Client

    from integrations.kubeflow.validate import check_pipeline_file

    started = time.monotonic()
    written = compile_for_kubeflow(out_dir, stack, echo, zenml_url, model_name, pipelines)
    for name, path in written.items():
        summary = check_pipeline_file(path)
        tasks = f"{summary.tasks} task{'' if summary.tasks == 1 else 's'}"
        echo(f"  {name}: {tasks}, KFP checks passed ({path})")
    echo(f"Compiled in {time.monotonic() - started:.1f}s.")
    server = Client().zen_store.url
    echo(f"Registered on the ZenML server {server}: the stack and one snapshot per file, no run.")
