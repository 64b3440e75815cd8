"""Where zenkube keeps its state: the one rule every module uses."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def zenkube_home() -> Path:
    """$ZENKUBE_HOME, else `.zenkube/` in the repository: ZenML store, MLflow db, servers, logs."""
    return Path(os.environ.get("ZENKUBE_HOME") or REPO_ROOT / ".zenkube").resolve()


def log_file() -> Path:
    """The file library logs go to unless --verbose."""
    return zenkube_home() / "logs" / "zenkube.log"
