"""ZenML's own fixed cost on zenkube's stack: a one-step pipeline with nothing of ours in
it (no step module, no scikit-learn of ours, no config), run as `train` runs, on the same
prepared store and active stack. bench_cli.py times it to its "Step ... has started"
beside `train`: what train takes above it is zenkube's."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from stacks.env import prepare_environment  # noqa: E402 (before ZenML is imported)

prepare_environment()

from zenml import pipeline, step  # noqa: E402
from zenml.utils import source_utils  # noqa: E402

source_utils.set_custom_source_root(str(REPO_ROOT))


@step
def first_step() -> int:
    return 1


@pipeline(enable_cache=False)
def zenml_floor_pipeline() -> None:
    first_step()


if __name__ == "__main__":
    zenml_floor_pipeline()
