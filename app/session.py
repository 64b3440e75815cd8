"""What every command does first: the process environment, the ZenML store, the stack.

The store and the stack are prepared once and recorded in ZENKUBE_HOME/prepared.json
(what was prepared, and a description of the active stack). A later command checks the
record cheaply (a few small files, no ZenML import) and prepares again only when the
stack spec, the project's or ZenML's version, the store or the active stack changed.
Read-only commands (`serve status`, `history`, `release status`, `monitor history`,
`stack show`) answer from the record without importing ZenML at all
(integrations/seldon_local/local_records.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

PREPARING = "zenkube: preparing the ZenML store and the '{stack}' stack..."
# 2: the record lists the files of zenkube's flavors (`flavor_modules`); a record of 1 was
# written before issue #37 moved modules into folders, so its store is prepared again.
RECORD_VERSION = 2


def prepare(program: str | None = None) -> None:
    """Point ZenML and MLflow at zenkube's state folder (before ZenML is imported). As the
    program (run.py passes its `__name__`), a pipeline command then runs in the warm
    worker when one runs for this environment, and this process exits with its status
    (app/warm.py)."""
    from stacks.env import prepare_environment

    prepare_environment()
    if program == "__main__":
        from app.warm import exit_if_forwarded

        exit_if_forwarded()


def ready(echo: Callable[[str], None], stack: str = "local", runs_on_stack: bool = True) -> dict:
    """The ZenML repository and `stack` registered (unless another is active), prepared
    once and recorded; with `runs_on_stack`, a stack whose steps run in pods needs a ZenML
    server. Returns the record (the active stack as prepared)."""
    from stacks.env import require_server_for_remote_stack

    record = prepared(stack)
    _zenml_source_root()  # imports ZenML: its console handlers go to the log from here on
    _route_library_logs()
    if record is None:
        with preparation_lock(echo):
            record = prepared(stack)  # another command may have prepared meanwhile
            if record is None:
                record = _prepare(stack, echo)
    if runs_on_stack and record["stack"].get("remote"):
        require_server_for_remote_stack()
    return record


def _prepare(stack: str, echo: Callable[[str], None]) -> dict:
    from stacks.manage import ensure_zenml_ready

    echo(PREPARING.format(stack=stack))
    ensure_zenml_ready(stack)
    return write_record(stack)


def _zenml_source_root() -> None:
    """What every ZenML command needs even when nothing is prepared: code is imported
    by dotted path from the repository root."""
    from zenml.utils import source_utils

    from core.paths import REPO_ROOT

    source_utils.set_custom_source_root(str(REPO_ROOT))


def _route_library_logs() -> None:
    from app.console import route_library_logs

    route_library_logs()


# -- the record ---------------------------------------------------------------------------
def record_path() -> Path:
    from core.paths import zenkube_home

    return zenkube_home() / "prepared.json"


def preparation_key(stack: str) -> dict:
    """What a preparation depends on: the stack spec's text, the project's and ZenML's
    versions, where the store and the repository are. Cheap: no ZenML import."""
    from importlib.metadata import PackageNotFoundError, version

    from core.paths import REPO_ROOT, zenkube_home
    from stacks.env import spec_path

    try:
        spec = hashlib.sha256(spec_path(stack).read_bytes()).hexdigest()
    except Exception:  # an unknown spec: the preparation itself says what is wrong
        spec = None
    try:
        zenml = version("zenml")
    except PackageNotFoundError:
        zenml = None
    pyproject = REPO_ROOT / "pyproject.toml"
    project = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
    return {
        "record": RECORD_VERSION,
        "stack_spec": stack,
        "spec_sha256": spec,
        "project_version": project.group(1) if project else None,
        "zenml_version": zenml,
        "zenkube_home": str(zenkube_home()),
        "zenml_config_path": os.environ.get("ZENML_CONFIG_PATH", ""),
        "repository": os.environ.get("ZENML_REPOSITORY_PATH", str(REPO_ROOT)),
    }


def repository_config() -> Path:
    """ZenML's repository config (`.zen/config.yaml`, written by `Client.initialize`)."""
    from core.paths import REPO_ROOT

    return Path(os.environ.get("ZENML_REPOSITORY_PATH") or REPO_ROOT) / ".zen" / "config.yaml"


def active_stack_id() -> str | None:
    """The active stack's id as ZenML keeps it: the repository's config, else the global
    one (read as text: ZenML writes `active_stack_id: <uuid>` in both)."""
    config = Path(os.environ.get("ZENML_CONFIG_PATH", "")) / "config.yaml"
    for path in (repository_config(), config):
        try:
            found = re.search(r"^active_stack_id:\s*(\S+)", path.read_text(), re.M)
        except OSError:
            continue
        if found:
            return found.group(1)
    return None


def prepared(stack: str = "local") -> dict | None:
    """The record of the last preparation when it still holds (same key, the repository
    and the store still there, the same active stack); None: prepare (again)."""
    try:
        record = json.loads(record_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != preparation_key(stack):
        return None
    store = record.get("stack", {}).get("store_file")
    if (store and not Path(store).exists()) or not repository_config().exists():
        return None
    if not record.get("stack", {}).get("id") or record["stack"]["id"] != active_stack_id():
        return None
    from core.paths import REPO_ROOT

    if not all((REPO_ROOT / module).is_file() for module in record.get("flavor_modules", [])):
        return None  # a flavor's class moved: the store holds its old source path
    return record


def write_record(stack: str) -> dict:
    """Record the preparation just done, with the active stack as ZenML describes it."""
    from stacks.manage import describe_active_stack, flavor_modules

    record = {"key": preparation_key(stack), "stack": describe_active_stack()}
    record["flavor_modules"] = flavor_modules()
    record["stack"]["id"] = active_stack_id() or record["stack"]["id"]
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(path)  # atomic: a reader sees the old record or the new one
    return record


def forget() -> None:
    """Drop the record (the next command prepares again)."""
    record_path().unlink(missing_ok=True)


@contextlib.contextmanager
def preparation_lock(echo: Callable[[str], None] | None = print) -> Iterator[None]:
    """One preparation at a time: ZenML writes its config and store while it prepares,
    and a command reading them meanwhile could see a half-written file."""
    from core.champion import locks

    with locks.named_lock("zenml-preparation", "preparing the ZenML store", echo):
        yield


# -- commands about the stack -------------------------------------------------------------
def stack_up(name: str, echo: Callable[[str], None] = print) -> None:
    """Register stack NAME idempotently and activate it; say what changed."""
    from stacks.env import prepare_zenml
    from stacks.manage import stack_up as register

    _zenml_source_root()
    _route_library_logs()
    with preparation_lock(echo):
        prepare_zenml()
        changes = register(name)
        write_record("local")
    if changes.changed:
        created, updated = changes.created or "-", changes.updated or "-"
        said = f"Stack '{changes.stack}': created {created}, updated {updated}."
    else:
        said = f"Stack '{changes.stack}' is already registered as specified: no change."
    echo(said)
    echo(f"Active stack: {changes.stack}")


def stack_show(echo: Callable[[str], None] = print) -> None:
    """Print the active stack and its components, one line each (from the record of the
    preparation; the first command prepares)."""
    record = prepared() or ready(echo, runs_on_stack=False)
    stack = record["stack"]
    echo(f"Active stack: {stack['name']}")
    for ctype, name, flavor in stack["components"]:
        echo(f"  {ctype:20s} {name} ({flavor})")


def stack_check(echo: Callable[[str], None] = print) -> bool:
    """Preflight of the active Kubeflow stack against its cluster (one line per check,
    with the fix for each failure); True when every check passes. The stack's settings
    are read through ZenML; the cluster is asked with the user's kubeconfig."""
    from core.errors import ConfigError
    from integrations.kubeflow import preflight

    record = prepared() or ready(echo, runs_on_stack=False)
    flavors = {ctype: flavor for ctype, _name, flavor in record["stack"]["components"]}
    if flavors.get("orchestrator") not in ("zenkube_kubeflow", "kubeflow"):
        raise ConfigError(
            f"The active stack '{record['stack']['name']}' is not a Kubeflow stack (its "
            f"orchestrator is {flavors.get('orchestrator')}), so there is no cluster to "
            "check. Run `python run.py stack up kubeflow` (or kubeflow-kserve) first."
        )
    _zenml_source_root()
    _route_library_logs()
    settings = preflight.settings_of_active_stack()
    checks = preflight.run_checks(preflight.api_client(settings.kube_context), settings)
    for check in checks:
        for line in check.lines():
            echo(line)
    failed = sum(not check.ok for check in checks)
    echo(f"{len(checks) - failed} of {len(checks)} checks passed."
         + (" Fix the ✗ lines above and run `run.py stack check` again." if failed else ""))  # fmt: skip
    return not failed
