"""Write kserve_inferenceservice_schema.json: the part of KServe's InferenceService CRD
schema that zenkube's manifests touch, from KServe's own CRD file.

Source: github.com/kserve/kserve, config/crd/full/serving.kserve.io_inferenceservices.yaml
(Apache-2.0), commit aaac4e294 (2026-11). The full schema is 1.9 MB (every Pod field, three
times over); this keeps its v1beta1 `openAPIV3Schema` with descriptions dropped and, below
`spec.predictor` and `spec.predictor.model`, the full definitions of the fields zenkube
writes and only the type of every other field, so an unknown field still fails the test.

    python tests/kubeflow/data/make_kserve_schema.py path/to/serving.kserve.io_inferenceservices.yaml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

KEEP = {
    ("spec",),
    ("spec", "predictor"),
    ("spec", "predictor", "model"),
    ("spec", "predictor", "model", "modelFormat"),
    ("spec", "predictor", "model", "protocolVersion"),
    ("spec", "predictor", "model", "runtime"),
    ("spec", "predictor", "model", "storageUri"),
    ("spec", "predictor", "model", "resources"),
    ("spec", "predictor", "serviceAccountName"),
    ("spec", "predictor", "minReplicas"),
    ("spec", "predictor", "maxReplicas"),
    ("spec", "predictor", "logger"),
    ("metadata",),
    ("apiVersion",),
    ("kind",),
}


LEAVES = {k for k in KEEP if not any(o != k and o[: len(k)] == k for o in KEEP)}


def strip(schema, path=()):
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in ("description", "properties", "items")}
    if "items" in schema:
        out["items"] = strip(schema["items"], path)
    if "properties" in schema:
        out["properties"] = {}
        for name, sub in schema["properties"].items():
            child = (*path, name)
            on_the_way = any(k[: len(child)] == child for k in KEEP)
            inside_kept = any(child[: len(leaf)] == leaf for leaf in LEAVES)
            if on_the_way or inside_kept:
                out["properties"][name] = strip(sub, child)
            else:
                out["properties"][name] = {"type": sub.get("type", "object")}
                if "x-kubernetes-int-or-string" in sub:
                    out["properties"][name]["x-kubernetes-int-or-string"] = True
    return out


def main() -> None:
    crd = yaml.safe_load(Path(sys.argv[1]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = strip(version["schema"]["openAPIV3Schema"])
    target = Path(__file__).with_name("kserve_inferenceservice_schema.json")
    target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
