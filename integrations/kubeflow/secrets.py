"""Keep credentials out of compiled KFP YAML.

With an authenticated ZenML server, ZenML writes `ZENML_STORE_API_TOKEN` (and any
other credential it knows) in plain text into every task's env. We move each such
variable to a Kubernetes Secret reference in the platform spec, which is how KFP's own
`kfp.kubernetes.use_secret_as_env` expresses it; the value never reaches the YAML.
"""

from __future__ import annotations

import re
from typing import Any

CREDENTIAL_NAMES = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY|ACCESS_KEY|CREDENTIALS?)$")


def is_credential(name: str) -> bool:
    return bool(CREDENTIAL_NAMES.search(name.upper()))


def _documents(document: Any) -> list[dict]:
    return document if isinstance(document, list) else [document]


def strip_credentials(document: Any, secret_name: str) -> Any:
    """Move credential env vars of every executor to `secret_name` references."""
    docs = _documents(document)
    spec = docs[0]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    moved: dict[str, list[str]] = {}
    for executor_name, executor in executors.items():
        container = executor.get("container", {})
        env = container.get("env") or []
        keep = [e for e in env if not is_credential(e.get("name", ""))]
        gone = [e["name"] for e in env if is_credential(e.get("name", ""))]
        if gone:
            container["env"] = keep
            moved[executor_name] = gone
    if not moved:
        return document
    if len(docs) == 1:
        docs.append({"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}})
    platform_executors = (
        docs[1]
        .setdefault("platforms", {})
        .setdefault("kubernetes", {})
        .setdefault("deploymentSpec", {})
        .setdefault("executors", {})
    )
    for executor_name, names in moved.items():
        refs = platform_executors.setdefault(executor_name, {}).setdefault("secretAsEnv", [])
        ref = next((r for r in refs if r.get("secretName") == secret_name), None)
        if ref is None:
            ref = {"secretName": secret_name, "keyToEnv": []}
            refs.append(ref)
        known = {k["envVar"] for k in ref["keyToEnv"]}
        ref["keyToEnv"] += [{"secretKey": n, "envVar": n} for n in names if n not in known]
    return docs if isinstance(document, list) or len(docs) > 1 else docs[0]


def credentials_in(document: Any) -> list[str]:
    """Credential-looking env vars that still carry a value in the YAML (should be none)."""
    found = []
    spec = _documents(document)[0]
    for name, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        for env in executor.get("container", {}).get("env") or []:
            if is_credential(env.get("name", "")) and env.get("value"):
                found.append(f"{name}:{env['name']}")
    return found
