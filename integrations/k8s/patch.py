"""JSON merge patches (RFC 7386) that make a custom object's spec exactly what we built.

The Kubernetes custom-objects API patches with `application/merge-patch+json` (the
`kubernetes` client's `patch_namespaced_custom_object`): objects merge key by key, lists
are replaced whole, and a key is removed only by sending it as `null`. A full body sent
as a patch therefore leaves behind every key the new body lacks (a release's
`spec.canary`, `canaryTrafficPercent`). `merge_patch` sends those nulls.
"""

from __future__ import annotations

import copy
import json

# A release is recorded on the cluster object it runs on, as JSON in this annotation
# (both cluster deployers' release_state read it back).
RELEASE = "zenkube.io/release"


def release_annotation(release: dict) -> dict:
    return {RELEASE: json.dumps(release, sort_keys=True)}


def read_release(body: dict | None) -> dict | None:
    """The release recorded on a cluster object (None: it never had one)."""
    text = (((body or {}).get("metadata") or {}).get("annotations") or {}).get(RELEASE)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def merge_patch(old: dict, new: dict) -> dict:
    """The RFC 7386 patch that turns `old` into `new` (nulls for keys `new` lacks)."""
    patch: dict = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or before != value:
            patch[key] = copy.deepcopy(value)
    return patch


def object_patch(current: dict, body: dict) -> dict:
    """What to send so the object's spec becomes `body`'s (when `body` has one) and its
    labels and annotations include `body`'s (others' labels and annotations, and the
    status, are left alone)."""
    patch = {}
    if "spec" in body:
        spec = merge_patch(current.get("spec") or {}, body["spec"] or {})
        patch = {"spec": spec} if spec else {}
    metadata = {}
    for key in ("labels", "annotations"):
        mine = (body.get("metadata") or {}).get(key) or {}
        theirs = (current.get("metadata") or {}).get(key) or {}
        changed = {k: v for k, v in mine.items() if theirs.get(k) != v}
        if changed:
            metadata[key] = changed
    if metadata:
        patch["metadata"] = metadata
    return patch


def whole_percent(percent: float, backend: str) -> int:
    """A canary's share as the operators take it: whole percents (KServe's `trafficPercent`
    / `canaryTrafficPercent`, Seldon's `traffic`, all integers); a fraction is refused
    rather than rounded."""
    if float(percent) != int(percent):
        from core.errors import ConfigError

        raise ConfigError(
            f"{backend} splits traffic in whole percents; {percent:g} was given. Use e.g. "
            f"--canary {max(1, round(percent))}."
        )
    return int(percent)
