"""Pipeline overhead: the phases of `python run.py` (set-up, train, deploy, monitor) vs a
plain script doing the same ML work without ZenML, MLflow or a server; per-step overhead.

Runs the loop twice in a fresh isolated store and reports the second (warm) pass.
"""

from __future__ import annotations

import time

from common import isolated_home, save, table

isolated_home("pipeline")

from stacks.env import prepare_environment  # noqa: E402
from stacks.manage import ensure_zenml_ready  # noqa: E402

prepare_environment()


def plain_script() -> dict:
    """The same ML work, no ZenML: load, validate, split, fit with search, evaluate, predict, drift."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from core.specs import DataSpec, MonitoringThresholds, TrainerSpec
    from materializers.dataset import Dataset
    from steps.data.load import load_dataset
    from steps.data.validate import check_dataset
    from steps.monitoring.drift import compute_drift
    from steps.training.metrics import compute_metrics
    from steps.training.train import fit_model

    times = {}
    t = time.perf_counter()
    data = check_dataset(load_dataset(DataSpec()))
    rest, test = train_test_split(
        data.frame, test_size=0.2, random_state=42, stratify=data.frame["target"]
    )
    train, valid = train_test_split(rest, test_size=0.25, random_state=42, stratify=rest["target"])
    parts = [Dataset(frame=f, target="target", task="classification") for f in (train, valid, test)]
    model, _ = fit_model(parts[0], parts[1], TrainerSpec(search={"max_depth": [4, None]}))
    compute_metrics("classification", model, parts[2].features, parts[2].labels)
    times["train"] = time.perf_counter() - t
    t = time.perf_counter()
    model.predict(parts[2].features.head(3))
    times["deploy"] = time.perf_counter() - t
    t = time.perf_counter()
    model.predict(parts[2].features)
    compute_drift(parts[0], parts[2].features, MonitoringThresholds())
    times["monitor"] = time.perf_counter() - t
    del np
    return times


def zenkube_loop() -> tuple[dict, dict]:
    from zenml.client import Client

    from app import loop, runner

    times = {}
    t = time.perf_counter()
    ensure_zenml_ready("local")
    times["set-up"] = time.perf_counter() - t
    t = time.perf_counter()
    result = runner.train()
    times["train"] = time.perf_counter() - t
    t = time.perf_counter()
    runner.deploy()
    times["deploy"] = time.perf_counter() - t
    t = time.perf_counter()
    path, _ = loop.batch_file("zenkube-model", simulate_drift=False)
    loop.monitor(None, {"batch": path}, echo=lambda *_: None)
    times["monitor"] = time.perf_counter() - t
    run = Client().get_pipeline_run(result.run_name)
    steps = {
        name: (s.end_time - s.start_time).total_seconds()
        for name, s in run.steps.items()
        if s.end_time and s.start_time
    }
    return times, steps


def main() -> None:
    zenkube_loop()  # cold pass: store, MLflow db, server environment
    warm, steps = zenkube_loop()
    plain = plain_script()
    rows = []
    for phase in ("set-up", "train", "deploy", "monitor"):
        base = plain.get(phase, 0.0)
        rows.append([phase, warm[phase], base, warm[phase] - base])
    total = sum(warm.values())
    rows.append(["total", total, sum(plain.values()), total - sum(plain.values())])
    print(
        table(
            "Warm loop: zenkube vs the same ML work in a plain script (seconds)",
            ["phase", "zenkube", "plain script", "overhead"],
            rows,
        )
    )
    print(
        table(
            "Training pipeline: seconds per step (ZenML step run times)",
            ["step", "seconds"],
            [[k, v] for k, v in steps.items()],
        )
    )
    print(f"Target: warm loop ≤ 60 s → {total:.1f} s ({'met' if total <= 60 else 'NOT met'})")
    from core.paths import zenkube_home
    from tests.conftest import stop_servers_under

    stop_servers_under(zenkube_home() / "serving")
    print(f"JSON: {save('pipeline', {'zenkube_warm_s': warm, 'plain_s': plain, 'steps_s': steps})}")


if __name__ == "__main__":
    main()
