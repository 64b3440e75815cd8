"""Shared helpers: machine facts, tables, JSON results, an isolated zenkube home, its
prepared local store, and the 30-column synthetic table the batch benchmarks score."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(REPO_ROOT))

PACKAGES = ["zenml", "mlflow", "scikit-learn", "evidently", "kfp", "numpy", "pandas", "scipy"]


def machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def table(title: str, headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, "-" * len(title)]
    for i, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def isolated_home(prefix: str) -> Path:
    """A fresh ZENKUBE_HOME / ZenML store for this benchmark process (set before zenml import)."""
    home = Path(tempfile.mkdtemp(prefix=f"zenkube-bench-{prefix}-"))
    os.environ["ZENKUBE_HOME"] = str(home)
    os.environ["ZENML_CONFIG_PATH"] = str(home / "zenml")
    (home / "repo").mkdir()
    os.environ["ZENML_REPOSITORY_PATH"] = str(home / "repo")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    return home


def local_store() -> None:
    """Prepare the isolated home's ZenML store and the local stack (as every command does)."""
    from stacks.env import prepare_environment
    from stacks.manage import ensure_zenml_ready

    prepare_environment()
    ensure_zenml_ready("local")


COLUMNS = [f"c{i}" for i in range(30)]


def frame(rows: int, seed: int, labels: bool):
    """`rows` rows of 30 normal columns; with `labels`, a `label` learnable from two."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)
    if labels:
        data["label"] = (data["c0"] + data["c1"] > 0).astype(int)
    return data


def train_big(data_dir: Path, **trainer) -> None:
    """Train the `big` model on 5,000 labelled rows of `frame` (no search)."""
    from app import runner

    data_dir.mkdir(parents=True, exist_ok=True)
    train = data_dir / "train.csv"
    frame(5_000, 0, labels=True).to_csv(train, index=False)
    overrides = {"model_name": "big", "data.source": str(train), "data.target": "label"}
    runner.train(None, {**overrides, **trainer, "trainer.search": {}})
