"""The loop over ten iterations: what each retraining learns from, what the gate decides
on, and whether a promotion was really better.

A first champion is trained on 400 labelled rows; then ten labelled batches of 160 rows
go through `monitor` (the continuous-training pipeline on the local stack, its default
config: `retrain.window: all`, half of each batch reserved for evaluation, the paired
gate at gate.min_rows 100), some of them shifted: `covariate` moves two inputs (same
rule), `new` moves one far and changes the rule there (what only a retraining can learn).
For every retraining it prints the rows trained on, the evaluation rows and interval the
gate decided on, its outcome, and the candidate's f1 minus the champion's on 20,000
independent rows of the batch's world that the loop never sees: a promotion with a
difference <= 0 is a false one. Serving is left alone (`redeploy=False`): the figures are
the loop's decisions, not deploy time. Prints a table; saves benchmarks/results/bench_loop.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import isolated_home, local_store, save, table

INPUTS = 6
# world: (shift of each input, the rule's sign on x1)
WORLDS = {
    "calm": ([0, 0, 0, 0, 0, 0], +1),
    "covariate": ([0, 0, 1.5, 0, -1.5, 0], +1),
    "new": ([0, 0, 0, 3.0, 0, 0], -1),
}
SEQUENCE = ["calm", "covariate", "calm", "new", "calm", "covariate", "calm", "new", "calm", "calm"]
FAST = {"trainer.params": {"max_iter": 20, "random_state": 0}, "trainer.search": {}}


def draw(world: str, rows: int, seed: int) -> pd.DataFrame:
    shift, sign = WORLDS[world]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, INPUTS)) + np.asarray(shift)
    label = x[:, 0] + sign * x[:, 1] + 0.3 * rng.normal(size=rows) > 0
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(INPUTS)])
    frame["label"] = label.astype(int)
    return frame


def f1_on(model_name: str, version: str, truth: pd.DataFrame) -> float:
    import mlflow.sklearn
    from sklearn.metrics import f1_score

    model = mlflow.sklearn.load_model(f"models:/{model_name}/{version}")
    return float(f1_score(truth["label"], model.predict(truth.drop(columns="label"))))


def trained_rows(model_name: str, version: str) -> int:
    """How many rows the version learned from (MLflow's data.train_rows of its run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run_id = client.get_model_version(model_name, version).run_id
    return int(client.get_run(run_id).data.params["data.train_rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth-rows", type=int, default=20_000)
    args = parser.parse_args()
    home = isolated_home("loop")
    local_store()
    from app import loop, runner
    from integrations.mlflow import registry as mlflow_registry

    model = "looped"
    first = home / "train.csv"
    draw("calm", 400, seed=0).to_csv(first, index=False)
    trained = runner.train(
        None, {"model_name": model, "data.source": str(first), "data.target": "label", **FAST}
    )
    champion = trained.registered.version
    rows, payload, started = [], {"args": vars(args), "iterations": []}, time.monotonic()
    for i, world in enumerate(SEQUENCE):
        path = home / f"batch-{i}-{world}.csv"
        draw(world, 160, seed=100 + i).to_csv(path, index=False)
        began = time.monotonic()
        result = loop.monitor(
            None, {"model_name": model, "batch": str(path)}, FAST, redeploy=False, echo=str
        )
        seconds = time.monotonic() - began
        retraining = result.retraining
        entry = {"batch": world, "alert": result.decision.alert, "seconds": seconds}
        if retraining is not None:
            mlflow_registry.configure_from_stack()
            decision, candidate = retraining.decision, retraining.registered.version
            truth = draw(world, args.truth_rows, seed=10_000 + i)
            gain = f1_on(model, candidate, truth) - f1_on(model, champion, truth)
            low, high = decision.interval or (float("nan"), float("nan"))
            entry |= {
                "trained_on": trained_rows(model, candidate),
                "evaluation_rows": decision.evaluation_rows,
                "interval": [low, high],
                "outcome": decision.outcome,
                "true_gain": gain,
                "false_promotion": decision.promoted and gain <= 0,
            }
            if decision.promoted:
                champion = candidate
        entry["champion"] = champion
        payload["iterations"].append(entry)
        rows.append(
            [
                i + 1,
                world,
                "yes" if entry["alert"] else "no",
                entry.get("trained_on", "-"),
                entry.get("evaluation_rows", "-"),
                f"[{low:+.3f}, {high:+.3f}]" if retraining is not None else "-",
                entry.get("outcome", "no retraining"),
                f"{entry['true_gain']:+.3f}" if "true_gain" in entry else "-",
                f"v{champion}",
                f"{seconds:.0f} s",
            ]
        )
    headers = [
        "#", "batch", "alert", "trained on", "gate rows", "interval (f1 diff)", "outcome",
        "true f1 gain", "champion", "time",
    ]  # fmt: skip
    false = sum(e.get("false_promotion", False) for e in payload["iterations"])
    print(
        table(
            f"Ten loop iterations, truth on {args.truth_rows:,} independent rows per world",
            headers,
            rows,
        )
    )
    print(f"false promotions: {false}; total {time.monotonic() - started:.0f} s")
    print(f"saved {save('bench_loop', payload)}")


if __name__ == "__main__":
    main()
