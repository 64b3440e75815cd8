"""The front's files: router.json (the served state, which a restarted front serves
again) and release.json beside it, each written whole or not at all."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


# What router.json keeps of a release (release.json beside it has the evidence too).
def read_json(path: Path) -> dict:
    """A JSON object from a file ({} when it is missing, unreadable or not an object)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Written whole or not at all (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, default=str))
    tmp.replace(path)


RELEASE_KEYS = ("active", "state", "mode", "percent", "champion", "candidate", "started_at",
                "ended_at", "decision", "resumed_at")  # fmt: skip


def restore_args(args: argparse.Namespace, record: dict) -> None:
    """The served state in `record` (router.json) over the command line's: a restarted
    front serves what its predecessor served last (deploys and promotes since its start
    switched it), on the same port."""
    for key in ("backend", "model", "version", "protocol", "server_dir", "traffic_dir"):
        if record.get(key) not in (None, ""):
            setattr(args, key, record[key])
    if isinstance(record.get("columns"), list):
        args.columns = json.dumps(record["columns"])
    if "traffic_dir" in record:
        args.traffic_dir = record["traffic_dir"] or ""
    if record.get("traffic_max_mb"):
        args.traffic_max_mb = int(record["traffic_max_mb"])
