"""Stack specs as data: load, validate and register them idempotently."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import ConfigError
from core.paths import zenkube_home
from integrations.kserve.flavor import FLAVOR_NAME as KSERVE_FLAVOR
from integrations.kubeflow.flavors import FLAVORS, KUBEFLOW_FLAVOR, SELDON_FLAVOR
from stacks.env import REPO_ROOT, STACKS_DIR, _expand, expand_vars, prepare_zenml, spec_path  # noqa: F401 (re-exported)


def load_spec(name_or_path: str) -> dict[str, Any]:
    """Read a stack spec and expand ${VARS} (ZENKUBE_HOME is always defined)."""
    raw = yaml.safe_load(spec_path(name_or_path).read_text())
    env = {**os.environ, "ZENKUBE_HOME": str(zenkube_home())}
    spec = without_empty_endpoint(_expand(raw, env))
    problems = validate_spec(spec)
    if problems:
        raise ConfigError(
            f"Stack spec '{name_or_path}' is not usable: " + "; ".join(problems) + "."
        )
    return spec


def without_empty_endpoint(spec: dict[str, Any]) -> dict[str, Any]:
    """The artifact store's `client_kwargs.endpoint_url` goes when it expanded to "" (AWS
    S3 itself): s3fs/botocore refuse an empty endpoint, and ZenML keeps what it is given."""
    store = components_of(spec).get("artifact_store") or {}
    kwargs = (store.get("configuration") or {}).get("client_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("endpoint_url") == "":
        kwargs.pop("endpoint_url")
        if not kwargs:
            store["configuration"].pop("client_kwargs")
    return spec


def components_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """component type → its single component dict."""
    result = {}
    for ctype, entries in (spec.get("components") or {}).items():
        entries = entries if isinstance(entries, list) else [entries]
        if entries:
            result[ctype] = entries[0]
    return result


def validate_spec(spec: dict[str, Any]) -> list[str]:
    """Every reason the spec cannot make a working zenkube stack, with the key to set."""
    problems = []
    if not spec.get("stack_name"):
        problems.append("set `stack_name`")
    comps = components_of(spec)
    for required in ("orchestrator", "artifact_store"):
        if required not in comps:
            problems.append(f"add a `components.{required}` entry")
    for ctype, comp in comps.items():
        for key in ("name", "flavor"):
            if not comp.get(key):
                problems.append(f"`components.{ctype}` needs a `{key}`")
    tracker = comps.get("experiment_tracker")
    if tracker is None or tracker.get("flavor") != "mlflow":
        problems.append("add an mlflow `components.experiment_tracker` (zenkube logs to MLflow)")
    if "model_registry" not in comps:
        problems.append("add an mlflow `components.model_registry` (promotion uses its aliases)")
    orchestrator = comps.get("orchestrator", {})
    if orchestrator.get("flavor") == "kubeflow":
        problems.append(
            f"use `flavor: {KUBEFLOW_FLAVOR}` for the orchestrator: ZenML's own `kubeflow` "
            "flavor crashes on memory settings (zenkube's subclass fixes it; same config keys)"
        )
    if orchestrator.get("flavor") in ("kubeflow", KUBEFLOW_FLAVOR):
        problems.extend(_kubeflow_problems(comps))
    return problems


def _kubeflow_problems(comps: dict[str, dict[str, Any]]) -> list[str]:
    """A Kubeflow stack runs tasks in pods: everything they touch must be remote."""
    problems = []
    store = comps.get("artifact_store", {})
    bucket = str((store.get("configuration") or {}).get("path", "")).startswith(
        ("s3://", "gs://", "az://", "abfs://")
    )
    if store.get("flavor") != "shared_volume" and (store.get("flavor") == "local" or not bucket):
        problems.append(
            "a Kubeflow stack needs a bucket artifact store (s3/gcs/azure): set "
            "`components.artifact_store.flavor` and `configuration.path: s3://bucket/...` "
            "(or `flavor: shared_volume` for a volume every pod mounts at the same path)"
        )
    if "container_registry" not in comps:
        problems.append(
            "a Kubeflow stack needs `components.container_registry` "
            "(configuration.uri: your registry) for the step images"
        )
    if "image_builder" not in comps:
        problems.append("a Kubeflow stack needs `components.image_builder` (e.g. flavor: local)")
    tracker = comps.get("experiment_tracker", {})
    uri = str((tracker.get("configuration") or {}).get("tracking_uri", ""))
    if not uri.startswith(("http://", "https://")):
        problems.append(
            "a Kubeflow stack needs an MLflow tracking server: set "
            "`components.experiment_tracker.configuration.tracking_uri: http://...`"
        )
    deployer = comps.get("model_deployer", {})
    if deployer.get("flavor") not in (SELDON_FLAVOR, KSERVE_FLAVOR):
        problems.append(
            f"a Kubeflow stack serves with Seldon Core or KServe: add a `{SELDON_FLAVOR}` "
            "model_deployer (ZenML's `seldon` flavor with S3 credentials read in the right "
            f"order; same config keys) or a `{KSERVE_FLAVOR}` one (stacks/kubeflow-kserve.yaml)"
        )
    return problems


_SECRET_REF = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\.([A-Za-z0-9_-]+)\s*\}\}")


def secret_references(spec: Any) -> dict[str, set[str]]:
    """ZenML secret references (`{{name.key}}`) in a spec: name → keys."""
    found: dict[str, set[str]] = {}
    if isinstance(spec, str):
        for name, key in _SECRET_REF.findall(spec):
            found.setdefault(name, set()).add(key)
    elif isinstance(spec, dict | list):
        for value in spec.values() if isinstance(spec, dict) else spec:
            for name, keys in secret_references(value).items():
                found.setdefault(name, set()).update(keys)
    return found


def ensure_secrets(spec: dict[str, Any], create_placeholders: bool = False) -> list[str]:
    """Check the spec's secret references exist; return the names of placeholders created.

    Without `create_placeholders`, a missing secret is a ConfigError with the command
    that creates it. Placeholders (value "unset") let `compile` work before credentials
    exist; values never reach compiled YAML, pods resolve them at run time.
    """
    from zenml.client import Client

    client = Client()
    created = []
    for name, keys in sorted(secret_references(spec).items()):
        try:
            client.get_secret(name)
            continue
        except KeyError:
            pass
        if not create_placeholders:
            args = " ".join(f"--{k}=..." for k in sorted(keys))
            # zenkube's own ZenML config, not the user's global one the plain CLI would use
            where = os.environ.get("ZENML_CONFIG_PATH")
            prefix = f"ZENML_CONFIG_PATH={shlex.quote(where)} " if where else ""
            raise ConfigError(
                f"The stack spec references the ZenML secret '{name}', which does not exist. "
                f"Create it first: `{prefix}zenml secret create {name} {args}`."
            )
        client.create_secret(name, values=dict.fromkeys(sorted(keys), "unset"))
        created.append(name)
    return created


@dataclass
class StackChanges:
    """What `stack_up` did: component names created, updated, unchanged."""

    stack: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    placeholder_secrets: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


ZENKUBE_FLAVORS = {
    "shared_volume": (
        "artifact_store",
        "integrations.zenml_adapters.shared_volume.SharedVolumeArtifactStoreFlavor",
    ),
    "seldon_local": (
        "model_deployer",
        "integrations.seldon_local.flavor.SeldonLocalModelDeployerFlavor",
    ),
    "zenkube_kserve": (
        "model_deployer",
        "integrations.kserve.flavor.KServeModelDeployerFlavor",
    ),
    **FLAVORS,
}


def ensure_flavors() -> None:
    """Register zenkube's own flavors (no-op when already registered). A flavor the store
    holds by a source path its class has moved from (issue #37 moved modules into
    folders) is pointed at where the class lives now: ZenML loads a flavor by the source
    it stored, so the old path would fail every command on a stack that uses it."""
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.models import FlavorUpdate

    client = Client()
    for name, (ctype, source) in ZENKUBE_FLAVORS.items():
        stype = StackComponentType(ctype)
        registered = {f.name: f for f in client.get_flavors_by_type(stype)}
        if name not in registered:
            client.create_flavor(source=source, component_type=stype)
        elif registered[name].is_custom and registered[name].source != source:
            client.zen_store.update_flavor(registered[name].id, FlavorUpdate(source=source))


def flavor_modules() -> list[str]:
    """The files that define zenkube's flavors, relative to the repository root: a store
    prepared when one of them was elsewhere must be prepared again (app/session.py)."""
    return sorted(
        {
            source.rsplit(".", 1)[0].replace(".", "/") + ".py"
            for _, source in ZENKUBE_FLAVORS.values()
        }
    )


def stack_up(
    name_or_path: str, activate: bool = True, placeholder_secrets: bool = False
) -> StackChanges:
    """Register (or update) the spec's components and stack; same spec → no change."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    spec = load_spec(name_or_path)
    client = Client()
    placeholders = ensure_secrets(spec, create_placeholders=placeholder_secrets)
    if any(c.get("flavor") in ZENKUBE_FLAVORS for c in components_of(spec).values()):
        ensure_flavors()
    changes = StackChanges(stack=spec["stack_name"], placeholder_secrets=placeholders)
    component_ids: dict[StackComponentType, list] = {}
    for ctype, comp in components_of(spec).items():
        stype = StackComponentType(ctype)
        config = comp.get("configuration") or {}
        try:
            existing = client.get_stack_component(
                stype, comp["name"], allow_name_prefix_match=False
            )
        except KeyError:
            existing = None
        if existing is None:
            created = client.create_stack_component(comp["name"], comp["flavor"], stype, config)
            component_ids[stype] = [created.id]
            changes.created.append(comp["name"])
        elif existing.flavor_name != comp["flavor"] or _differs(existing.configuration, config):
            if existing.flavor_name != comp["flavor"]:
                raise ConfigError(
                    f"Component '{comp['name']}' exists with flavor '{existing.flavor_name}', the "
                    f"spec says '{comp['flavor']}'. Rename it in the spec or delete the old one "
                    f"(`zenml {ctype.replace('_', '-')} delete {comp['name']}`)."
                )
            client.update_stack_component(comp["name"], stype, configuration=config)
            component_ids[stype] = [existing.id]
            changes.updated.append(comp["name"])
        else:
            component_ids[stype] = [existing.id]
            changes.unchanged.append(comp["name"])
    try:
        stack = client.get_stack(spec["stack_name"], allow_name_prefix_match=False)
    except KeyError:
        stack = None
    if stack is None:
        client.create_stack(spec["stack_name"], components=component_ids)
        changes.created.append(spec["stack_name"])
    else:
        current = {t: [c.id for c in cs] for t, cs in stack.components.items()}
        if current != component_ids:
            client.update_stack(
                spec["stack_name"],
                component_updates={
                    **{t: [] for t in current if t not in component_ids},
                    **component_ids,
                },
            )
            changes.updated.append(spec["stack_name"])
    if activate and client.active_stack_model.name != spec["stack_name"]:
        client.activate_stack(spec["stack_name"])
    return changes


def _differs(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    # The store fills in defaults; only the keys the spec sets are compared.
    return any(existing.get(k) != v for k, v in wanted.items())


def describe_active_stack() -> dict[str, Any]:
    """The active stack as the read-only commands need it, without ZenML (recorded by
    app/session.py at preparation): its components, MLflow's tracking URI, the model
    deployer's flavor and state folder, whether its steps need a ZenML server, and the
    store's SQLite file (whose loss means preparing again)."""
    from zenml.client import Client

    client = Client()
    model = client.active_stack_model
    stack = client.active_stack
    components = [
        [ctype.value, component.name, component.flavor_name]
        for ctype, found in model.components.items()
        for component in found
    ]
    tracker = stack.experiment_tracker
    deployer = stack.model_deployer
    store = client.zen_store
    store_url = str(getattr(store.config, "url", "") or "")
    return {
        "id": str(model.id),
        "name": model.name,
        "components": components,
        "tracking_uri": tracker.get_tracking_uri()
        if tracker is not None and tracker.flavor == "mlflow"
        else None,
        "model_registry": stack.model_registry is not None,
        "deployer": {
            "flavor": deployer.flavor,
            "state_dir": deployer.state_dir() if hasattr(deployer, "state_dir") else None,
        }
        if deployer is not None
        else None,
        "remote": bool(stack.requires_remote_server and store.is_local_store()),
        "store_file": store_url.removeprefix("sqlite:///")
        if store_url.startswith("sqlite:")
        else None,
    }


def ensure_zenml_ready(stack: str = "local") -> None:
    """Initialise the ZenML repository; register the zenkube stack unless another is active.

    A fresh store (ZenML's `default` stack active) gets `stack` registered and activated;
    a user who switched to another stack (`python run.py stack up kubeflow`) keeps it.
    """
    from zenml.client import Client

    prepare_zenml()
    ensure_flavors()  # also for a stack of the user's own that uses one of zenkube's flavors
    active = Client().active_stack_model.name
    if active in ("default", load_spec(stack)["stack_name"]):
        stack_up(stack)
