"""What the KFP UI shows for each task: outputs declared at compile time, written in the pod.

ZenML's Kubeflow orchestrator runs each step as a bare container, so a KFP run shows task
names and nothing else. The `zenkube_kubeflow` orchestrator declares KFP output artifacts
on every task and wraps ZenML's step command:

    python -m integrations.kubeflow.ui_outputs --executor-input {{$}}
        --out card {{…card.path}} {{…card.uri}} … -- <ZenML's step command>

Only placeholders KFP's launcher substitutes are used (kubeflow/pipelines
backend/src/v2/component/launcher_v2.go, `compileCmdAndArgs` and `getPlaceholders`:
`{{$}}`, artifact `path`/`uri`, input parameters, output parameters' `output_file`). The
SDK's `{{$.outputs.output_file}}` is not among them, so the executor output file is read
from the executor input, where KFP's driver puts it (backend/src/v2/driver/driver.go,
`provisionOutputs`: `/tmp/kfp_outputs/output_metadata.json` up to KFP 2.14, the task's
local root from 2.15), as KFP's own Python executor does (kfp/dsl/executor.py).

The wrapper runs the step unchanged (its exit code is the task's). When it succeeded, the
wrapper reads the step's run back from the ZenML server and writes, where KFP's launcher
uploads them:

- `card` (system.Markdown), every task: the ZenML run and step, the MLflow run, and each
  output's small fields (a promotion's reason, a registered model's version).
- `metrics` (system.Metrics): the numeric metadata of the step's outputs (test metrics,
  drift share, row counts).
- `classification` (system.ClassificationMetrics): confusion matrix and ROC curve of an
  evaluation of a classifier.
- `report` (system.HTML): the first HTML visualization of the step's outputs (the
  evaluation report, the drift report, a dataset's profile).

Which outputs a task declares follows from its output materializers (`KFP_UI`), so KFP
shows no empty artifact boxes. Metrics go to KFP's metadata through the executor output
file, as KFP's own Python components do; the formats are kfp's own classes. `metrics`
holds only the figures the materializers that declare it extract (model and data
figures), not what ZenML adds to every artifact (`storage_size`).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

CARD, METRICS, CLASSIFICATION, REPORT = "card", "metrics", "classification", "report"
ORDER = (CARD, METRICS, CLASSIFICATION, REPORT)
# ZenML's step entry point reads the run's identity from it (zenml's KubeflowOrchestrator
# .get_orchestrator_run_id); the `zenkube_kubeflow` orchestrator fills it from the pod's
# `pipeline/runid` label (see orchestrator.py).
KFP_RUN_ID_ENV = "KFP_RUN_ID"
# What ZenML's BaseMaterializer._extract_base_metadata adds to every artifact: not a figure.
ZENML_BASE_METADATA = frozenset({"storage_size"})
# A step's `extra` key naming the KFP outputs of the artifacts it saves itself.
EXTRA_KEY = "kfp_ui"
MAX_ROC_POINTS = 200
MAX_FIELD_CHARS = 300
MAX_LIST_ITEMS = 50


# --- compile time -----------------------------------------------------------------------


def kinds_for_step(step_config) -> list[str]:
    """The KFP outputs a step declares: a card always, more where its materializers say so,
    and what its `extra` names under `kfp_ui` (a step that saves its artifacts only when
    it has any, e.g. the loop's retraining, declares what they can show)."""
    from zenml.utils import source_utils

    kinds = {CARD, *(getattr(step_config.config, "extra", None) or {}).get(EXTRA_KEY, ())}
    for output in step_config.config.outputs.values():
        for source in output.materializer_source or ():
            try:
                materializer = source_utils.load(source)
            except Exception:  # a materializer that cannot be imported here declares nothing
                continue
            kinds.update(getattr(materializer, "KFP_UI", ()))
    return [k for k in ORDER if k in kinds]


def artifact_classes() -> dict[str, type]:
    from kfp import dsl

    return {
        CARD: dsl.Markdown,
        METRICS: dsl.Metrics,
        CLASSIFICATION: dsl.ClassificationMetrics,
        REPORT: dsl.HTML,
    }


def container_component(
    image: str, command: list[str], arguments: list[str], name: str, kinds: list[str]
):
    """A KFP container component that runs ZenML's step command and writes `kinds`."""
    import inspect

    from kfp import dsl

    classes = artifact_classes()

    def spec(*artifacts):
        args = ["--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER]
        for kind, artifact in zip(kinds, artifacts, strict=True):
            args += ["--out", kind, artifact.path, artifact.uri]
        return dsl.ContainerSpec(
            image=image,
            command=["python", "-m", "integrations.kubeflow.ui_outputs"],
            args=[*args, "--", *command, *arguments],
        )

    spec.__name__ = spec.__qualname__ = name
    spec.__signature__ = inspect.Signature(
        [
            inspect.Parameter(kind, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation)
            for kind in kinds
            for annotation in [dsl.Output[classes[kind]]]
        ]
    )
    spec.__annotations__ = {kind: dsl.Output[classes[kind]] for kind in kinds}
    spec.__doc__ = f"ZenML step {name}"
    return dsl.container_component(spec)


# --- in the pod: what to write ----------------------------------------------------------


def classification_metadata(confusion: dict | None, roc: dict | None) -> dict[str, Any]:
    """system.ClassificationMetrics metadata, in kfp's own format."""
    from kfp import dsl

    artifact = dsl.ClassificationMetrics(name=CLASSIFICATION, uri="", metadata={})
    if confusion:
        labels = [str(label) for label in confusion["labels"]]
        artifact.log_confusion_matrix(
            labels, [[int(v) for v in row] for row in confusion["matrix"]]
        )
    if roc:
        fpr, tpr, thresholds = roc["fpr"], roc["tpr"], roc["thresholds"]
        step = max(1, math.ceil(len(fpr) / MAX_ROC_POINTS))
        keep = sorted(set(range(0, len(fpr), step)) | {len(fpr) - 1})
        # sklearn's first threshold is +inf ("predict nothing"), which JSON cannot hold.
        artifact.log_roc_curve(
            [float(fpr[i]) for i in keep],
            [float(tpr[i]) for i in keep],
            [min(float(thresholds[i]), 1.0) for i in keep],
        )
    return dict(artifact.metadata)


def numeric_metadata(outputs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Numbers from the outputs' metadata; a name two outputs share gets the output's prefix.

    ZenML's own per-artifact metadata (`storage_size`) is not a model or data figure.
    """
    metrics: dict[str, float] = {}
    for output, metadata in outputs.items():
        for key, value in metadata.items():
            if key in ZENML_BASE_METADATA:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                continue
            metrics[f"{output}.{key}" if key in metrics else key] = float(value)
    return metrics


def scalar_fields(value: Any) -> dict[str, str | list[str]]:
    """The small fields of an output object (text, numbers, flags, lists of text), shortened.

    A drift report leads with its verdict and the drifted columns; a list of text (a
    decision's reasons) stays a list, one line each on the card.
    """
    from pydantic import BaseModel

    if not isinstance(value, BaseModel):
        return {}
    fields: dict[str, str | list[str]] = {}
    verdict = getattr(value, "verdict", None)
    if callable(verdict) and isinstance(getattr(value, "drifted_columns", None), list):
        drifted, why = verdict()
        fields["verdict"] = f"{'drift' if drifted else 'no drift'}: {why}"
        fields["drifted columns"] = list(value.drifted_columns) or "none"
    for key, item in value.model_dump(exclude={"html"}).items():
        if isinstance(item, str | int | float | bool) and item != "":
            fields[key] = _short(str(item))
        elif isinstance(item, list) and item and all(isinstance(x, str) for x in item):
            fields[key] = [_short(x) for x in item[:MAX_LIST_ITEMS]]
            if len(item) > MAX_LIST_ITEMS:
                fields[key].append(f"… {len(item) - MAX_LIST_ITEMS} more")
    return fields


def _short(text: str) -> str:
    return text[:MAX_FIELD_CHARS] + "…" if len(text) > MAX_FIELD_CHARS else text


def card_markdown(facts: dict[str, Any]) -> str:
    """The task's card: where this step lives in ZenML and MLflow, and what it decided."""
    lines = [f"### {facts['step']}", ""]
    lines.append(f"- **ZenML run:** `{facts['run_name']}` (id `{facts['run_id']}`)")
    lines.append(f"- **ZenML step run:** `{facts['step_run_id']}`, status {facts['status']}")
    if facts.get("dashboard"):
        lines.append(f"- **ZenML dashboard:** {facts['dashboard']}")
    if facts.get("mlflow_run"):
        lines.append(f"- **MLflow run:** {facts['mlflow_run']}")
    elif facts.get("mlflow"):
        lines.append(f"- **MLflow:** {facts['mlflow']}")
    for output, fields in facts.get("outputs", {}).items():
        lines += ["", f"#### `{output}`", ""]
        if not fields:
            lines.append("(see the ZenML dashboard)")
        for key, value in fields.items():
            if isinstance(value, list):
                lines.append(f"- **{key}:**")
                lines += [f"  - {item}" for item in value]
            else:
                lines.append(f"- **{key}:** {value}")
        model = facts.get("models", {}).get(output)
        if model:
            lines.append(f"- **MLflow model:** {model}")
    if facts.get("note"):
        lines += ["", facts["note"]]
    return "\n".join(lines) + "\n"


def no_report_html(step: str, why: str) -> str:
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<p>{html.escape(step)}: {html.escape(why)}</p></body></html>"
    )


def step_facts(step_name: str, snapshot_id: str, kfp_run: str) -> dict[str, Any]:
    """Read the finished step back from the ZenML store (the server, in a pod)."""
    from zenml.artifacts.utils import load_artifact_visualization
    from zenml.client import Client
    from zenml.enums import ArtifactType, VisualizationType

    client = Client()
    runs = client.list_pipeline_runs(
        snapshot_id=snapshot_id, orchestrator_run_id=kfp_run, hydrate=True
    ).items
    if not runs:
        raise LookupError(f"no ZenML run of snapshot {snapshot_id} for KFP run {kfp_run}")
    run = runs[0]
    step = run.steps[step_name]
    facts: dict[str, Any] = {
        "step": step_name,
        "run_name": run.name,
        "run_id": str(run.id),
        "step_run_id": str(step.id),
        "status": str(step.status.value if hasattr(step.status, "value") else step.status),
        "outputs": {},
        "models": {},
        "metadata": {},
        "html": None,
        "confusion": None,
        "roc": None,
    }
    try:
        from zenml.utils.dashboard_utils import get_run_url

        facts["dashboard"] = get_run_url(run)
    except Exception:  # a link is a convenience: the run id is on the card anyway
        facts["dashboard"] = None
    tracking_uri = mlflow_uri(run)
    metadata = step.run_metadata
    if tracking_uri and metadata.get("mlflow_run_id"):
        facts["mlflow_run"] = (
            f"{tracking_uri}/#/experiments/{metadata.get('mlflow_experiment_id')}"
            f"/runs/{metadata['mlflow_run_id']}"
        )
    elif tracking_uri:  # steps without the tracker: the pipeline's MLflow experiment
        facts["mlflow"] = f"experiment '{run.pipeline.name}' at {tracking_uri}"
    html_analysis = False
    for output, versions in step.outputs.items():
        for artifact in versions:
            if METRICS in _declared(artifact):
                facts["metadata"][output] = dict(artifact.run_metadata)
            # Small result objects are loaded; data (a batch, a model) is summed up by its
            # metadata, never read again.
            value = artifact.load() if _is_small_result(artifact) else None
            facts["outputs"][output] = scalar_fields(value) or {
                key: str(item)
                for key, item in artifact.run_metadata.items()
                if isinstance(item, str | int | float | bool)
            }
            # One report per task: an analysis (an evaluation, a drift report) before a
            # data set's profile, whatever order the server lists a step's outputs in.
            analysis = artifact.type == ArtifactType.DATA_ANALYSIS
            if artifact.visualizations and (facts["html"] is None or analysis > html_analysis):
                for index, visualization in enumerate(artifact.visualizations):
                    if visualization.type == VisualizationType.HTML:
                        facts["html"] = load_artifact_visualization(artifact, index).value
                        html_analysis = analysis
                        break
            facts["confusion"] = facts["confusion"] or getattr(value, "confusion", None)
            facts["roc"] = facts["roc"] or getattr(value, "roc", None)
            name, version = getattr(value, "name", None), getattr(value, "version", None)
            if tracking_uri and isinstance(name, str) and isinstance(version, str) and version:
                facts["models"][output] = f"{tracking_uri}/#/models/{name}/versions/{version}"
    return facts


def mlflow_uri(run) -> str:
    """The MLflow server of the run's stack, if it has an MLflow tracker with an HTTP URI."""
    from zenml.enums import StackComponentType

    stack = run.stack
    trackers = stack.components.get(StackComponentType.EXPERIMENT_TRACKER, []) if stack else []
    for tracker in trackers:
        uri = str(tracker.configuration.get("tracking_uri") or "")
        if uri.startswith("http"):
            return uri.rstrip("/")
    return ""


def _declared(artifact) -> tuple[str, ...]:
    """The KFP outputs the artifact's materializer declares (`KFP_UI`)."""
    from zenml.utils import source_utils

    try:
        return tuple(getattr(source_utils.load(artifact.materializer), "KFP_UI", ()))
    except Exception:  # a materializer that cannot be imported here declares nothing
        return ()


def _is_small_result(artifact) -> bool:
    from pydantic import BaseModel
    from zenml.utils import source_utils

    try:
        data_type = source_utils.load(artifact.data_type)
    except Exception:
        return False
    return isinstance(data_type, type) and issubclass(data_type, BaseModel)


def write_outputs(
    outputs: dict[str, tuple[str, str]], facts: dict[str, Any], output_file: str | None
) -> None:
    """Write each declared output where KFP uploads it, and their metadata for KFP."""
    metadata: dict[str, dict[str, Any]] = {}
    for kind, (path, _uri) in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if kind == CARD:
            Path(path).write_text(card_markdown(facts))
            continue
        if kind == REPORT:
            content = facts.get("html") or no_report_html(
                facts["step"], facts.get("note") or "this step wrote no HTML report"
            )
            Path(path).write_text(content)
            continue
        if kind == METRICS:
            metadata[kind] = numeric_metadata(facts.get("metadata", {}))
        elif kind == CLASSIFICATION:
            metadata[kind] = classification_metadata(facts.get("confusion"), facts.get("roc"))
        Path(path).write_text(json.dumps(metadata[kind], indent=1))
    if output_file:
        executor_output = {
            "artifacts": {
                kind: {"artifacts": [{"name": kind, "uri": outputs[kind][1], "metadata": data}]}
                for kind, data in metadata.items()
            }
        }
        Path(output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file).write_text(json.dumps(executor_output))


def executor_output_file(executor_input: str | None) -> str | None:
    """Where KFP's launcher reads the executor output: `outputs.outputFile` of the input.

    (kubeflow/pipelines backend/src/v2/component/launcher_v2.go reads the file named
    there, `getExecutorOutputFile(executorInput.GetOutputs().GetOutputFile())`.)
    """
    if not executor_input:
        return None
    try:
        return json.loads(executor_input)["outputs"]["outputFile"]
    except (ValueError, KeyError, TypeError):
        print(
            f"zenkube: the executor input is not KFP's JSON ({executor_input[:80]!r}): the "
            "task's metrics cannot reach the KFP UI",
            file=sys.stderr,
        )
        return None


def run_step(command: list[str]) -> int:
    """Run ZenML's step command and return its exit code.

    `python -m MODULE ARGS` (what ZenML writes) runs in this process, so the step and the
    read-back share one interpreter and one ZenML import; anything else is a child process
    that gets the pod's TERM or INT.
    """
    if len(command) >= 3 and command[1] == "-m" and Path(command[0]).name.startswith("python"):
        return run_module(command[2], command[3:])
    child = subprocess.Popen(command)

    def forward(signum, _frame):
        child.send_signal(signum)

    previous = {
        signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return child.wait()
    finally:  # the child is gone: a later Ctrl-C is this process's own again
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def run_module(module: str, args: list[str]) -> int:
    """`python -m module args`, in this process: its exit code as the interpreter would give."""
    import runpy
    import traceback

    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved
    return 0


def _argument(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1] if flag in command else ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: ui_outputs [--executor-input JSON] [--out KIND PATH URI]... -- COMMAND...")
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="ui_outputs")
    parser.add_argument("--executor-input")
    parser.add_argument("--out", nargs=3, action="append", default=[])
    ours = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    code = run_step(command)
    if code != 0:
        return code
    step_name = _argument(command, "--step_name")
    outputs = {kind: (path, uri) for kind, path, uri in ours.out}
    try:
        facts = step_facts(
            step_name, _argument(command, "--snapshot_id"), os.environ.get(KFP_RUN_ID_ENV, "")
        )
    except Exception as exc:  # the step succeeded: the task does too, and the card says why
        note = f"The step succeeded; its outputs could not be read back for the KFP UI: {exc}"
        print(f"zenkube: {note}", file=sys.stderr)
        facts = {"step": step_name, "run_name": "?", "run_id": "?", "step_run_id": "?"}
        facts.update(status="completed", note=note)
    write_outputs(outputs, facts, executor_output_file(ours.executor_input))
    return 0


if __name__ == "__main__":
    sys.exit(main())
