"""Check compiled KFP YAML with KFP's own code: strict parse, references, cycles, round trip."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


class PipelineSpecError(ValueError):
    """The compiled YAML is not a valid KFP v2 pipeline; the message says why."""


@dataclass
class SpecSummary:
    name: str
    tasks: int
    edges: set[tuple[str, str]]
    display_names: dict[str, str]


def load_documents(path: str | Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]


def parse_strict(document: dict) -> pipeline_spec_pb2.PipelineSpec:
    """Parse into KFP's PipelineSpec proto; unknown fields are an error."""
    spec = pipeline_spec_pb2.PipelineSpec()
    try:
        json_format.ParseDict(document, spec, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise PipelineSpecError(f"not a KFP PipelineSpec: {exc}") from exc
    return spec


def task_graph(spec: pipeline_spec_pb2.PipelineSpec) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """(task name → display name, {(upstream, downstream)}) of the root DAG."""
    tasks = spec.root.dag.tasks
    names = {name: task.task_info.name for name, task in tasks.items()}
    edges = {(up, name) for name, task in tasks.items() for up in task.dependent_tasks}
    return names, edges


def check_spec(documents: list[dict]) -> SpecSummary:
    """Raise PipelineSpecError unless the pipeline is well formed; summarise it."""
    spec = parse_strict(documents[0])
    if spec.schema_version != "2.1.0":
        raise PipelineSpecError(f"schemaVersion is {spec.schema_version!r}, expected 2.1.0")
    if len(documents) > 1:
        platform = pipeline_spec_pb2.PlatformSpec()
        json_format.ParseDict(documents[1], platform, ignore_unknown_fields=False)
    executors = set(spec.deployment_spec.fields["executors"].struct_value.fields)
    names, edges = task_graph(spec)
    for name, task in spec.root.dag.tasks.items():
        component = task.component_ref.name
        if component not in spec.components:
            raise PipelineSpecError(f"task {name} uses unknown component {component}")
        executor = spec.components[component].executor_label
        if executor not in executors:
            raise PipelineSpecError(f"component {component} uses unknown executor {executor}")
        for upstream in task.dependent_tasks:
            if upstream not in names:
                raise PipelineSpecError(f"task {name} depends on unknown task {upstream}")
    _check_acyclic(set(names), edges)
    return SpecSummary(spec.pipeline_info.name, len(names), edges, names)


def _check_acyclic(nodes: set[str], edges: set[tuple[str, str]]) -> None:
    remaining = set(nodes)
    incoming = {n: {u for u, d in edges if d == n} for n in nodes}
    while remaining:
        ready = [n for n in remaining if not (incoming[n] & remaining)]
        if not ready:
            raise PipelineSpecError(f"the task graph has a cycle among {sorted(remaining)}")
        remaining -= set(ready)


def topological_order(nodes: set[str], edges: set[tuple[str, str]]) -> list[str]:
    order, remaining = [], set(nodes)
    while remaining:
        ready = sorted(n for n in remaining if not any(d == n and u in remaining for u, d in edges))
        if not ready:
            raise PipelineSpecError("cycle")
        order += ready
        remaining -= set(ready)
    return order


def round_trip_identical(path: str | Path, tmp_dir: str | Path) -> bool:
    """load_component_from_file → Compiler().compile gives back the same pipeline spec."""
    from kfp import compiler, components

    loaded = components.load_component_from_file(str(path))
    again = Path(tmp_dir) / (Path(path).stem + ".roundtrip.yaml")
    compiler.Compiler().compile(loaded, str(again))
    return load_documents(path)[0] == load_documents(again)[0]


def check_pipeline_file(path: str | Path) -> SpecSummary:
    return check_spec(load_documents(path))
