"""The names zenkube keeps in MLflow's registry, and the histories it keeps in tags:
used by the writers (registry.py, champion.py) and by the ZenML- and MLflow-free reader of
the read-only commands (integrations/seldon_local/local_records.py) alike. No imports of
MLflow here: the reader must not pay for them."""

from __future__ import annotations

import datetime
import json

CHAMPION_ALIAS = "champion"
# Champion changes, newest last, as JSON in a registered-model tag (MLflow keeps it).
HISTORY_TAG = "zenkube.champion_history"
# Releases (canary/shadow, issue #27) and their outcome, newest last, apart from the
# champion changes, which `repair` reads (an aborted release moved no champion).
RELEASE_HISTORY_TAG = "zenkube.release_history"
HISTORY_KEEP = 20  # entries each history keeps
REASON_KEEP = 300  # characters of each entry's reason


def events(tags: dict[str, str], tag: str) -> list[dict]:
    """A history kept as JSON in a registered-model tag (oldest first), newest first."""
    return list(reversed(json.loads(tags.get(tag) or "[]")))


def stamp(epoch: float | None = None) -> str:
    """An entry's `at`: UTC to the second (text that sorts as time); now when `epoch` is None."""
    if epoch is None:
        epoch = datetime.datetime.now(datetime.UTC).timestamp()
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def change_event(version: str, by: str, reason: str) -> dict:
    """A champion change, now: `by` whole (a run name must be one the user can look up)."""
    return {"at": stamp(), "version": str(version), "by": by, "reason": reason[:REASON_KEEP]}


def release_event(state: dict, outcome: str, by: str, reason: str) -> dict:
    """An ended release (its front/deployer state): when it ended, candidate and champion,
    mode and share, outcome (promoted | aborted), by, why, and its start (its id)."""
    return {
        "at": stamp(state.get("ended_at") or None),
        "version": str((state.get("candidate") or {}).get("version", "")),
        "champion": str((state.get("champion") or {}).get("version", "")),
        "mode": str(state.get("mode", "")),
        "percent": state.get("percent"),
        "outcome": outcome,
        "by": by,
        "reason": reason[:REASON_KEEP],
        "started_at": state.get("started_at"),
    }
