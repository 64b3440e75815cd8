"""The names zenkube keeps in MLflow's registry, and the histories it keeps in tags:
used by the writers (registry.py, champion.py) and by the ZenML- and MLflow-free reader of
the read-only commands (integrations/seldon_local/local_records.py) alike. No imports of
MLflow here: the reader must not pay for them."""

from __future__ import annotations

import json

CHAMPION_ALIAS = "champion"
# Champion changes, newest last, as JSON in a registered-model tag (MLflow keeps it).
HISTORY_TAG = "zenkube.champion_history"
# Releases (canary/shadow, issue #27) and their outcome, newest last, apart from the
# champion changes, which `repair` reads (an aborted release moved no champion).
RELEASE_HISTORY_TAG = "zenkube.release_history"


def events(tags: dict[str, str], tag: str) -> list[dict]:
    """A history kept as JSON in a registered-model tag (oldest first), newest first."""
    return list(reversed(json.loads(tags.get(tag) or "[]")))
