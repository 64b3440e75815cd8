"""Compile every pipeline to KFP v2 IR YAML on the Kubeflow stack (no cluster, no Docker)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from app.config import PIPELINES, load_run_config

# Where compiled monitoring pipelines read their batch unless the run sets `batch`.
DEFAULT_BATCH = "batches/current.parquet"
# Where compiled batch-inference pipelines write unless the run sets `output_path`.
DEFAULT_PREDICTIONS = "predictions/current.parquet"


def compile_for_kubeflow(
    out_dir: str | os.PathLike,
    stack: str = "kubeflow",
    echo: Callable[[str], None] = print,
    zenml_url: str | None = None,
    model_name: str | None = None,
    pipelines: list[str] | None = None,
) -> dict[str, Path]:
    """Write KFP v2 IR YAML for the pipelines, compiled on the Kubeflow stack `stack`.

    The tasks reach the ZenML server `zenml_url`; by default the connected server's, and
    offline (local store) a placeholder the output tells the user to set. `pipelines`
    limits which pipelines are compiled (default: all).
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
    spec = load_spec(stack)
    changes = stack_up(stack, activate=False, placeholder_secrets=True)
    for name in changes.placeholder_secrets:
        echo(
            f"zenkube: created the ZenML secret '{name}' with placeholder values so the stack "
            f"can be compiled; set real values before running on a cluster "
            f"(`zenml secret update {name} ...`)."
        )
    local_store = Client().zen_store.is_local_store()
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
    if Client().zen_store.is_local_store():
        echo(
            "Note: the stack and snapshot ids in the YAML are this machine's store's. To run on "
            f"a cluster, connect to your ZenML server (`zenml login https://...`), `stack up "
            f"{stack}` there and compile again; see docs/kubeflow.md."
        )
