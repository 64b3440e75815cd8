"""Training at scale: zenkube's default model on a flights-like table (146k rows x 18
columns, a 4,000-value tail number) against a plain scikit-learn HistGradientBoosting
script on the same split, in the same run: fit time, model size, test score.

    .venv/bin/python benchmarks/bench_training.py [--rows N] [--old-default]

`--old-default` also fits the previous default (a 100-tree random forest on one-hot
categories, with its two-fit search); it takes many minutes at full size.
No downloads: the table is generated (seeded) with the shape of nycflights13.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time

import numpy as np
import pandas as pd
from common import REPO_ROOT, save, table


def flights(rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded table shaped like nycflights13's `flights`: arrival delay to predict."""
    rng = np.random.default_rng(seed)
    carriers = np.array([f"C{i:02d}" for i in range(16)])
    dests = np.array([f"D{i:03d}" for i in range(105)])
    tails = np.array([f"N{i:04d}{chr(65 + i % 26)}" for i in range(4_000)])
    carrier = rng.choice(carriers, rows, p=np.linspace(3, 0.2, 16) / np.linspace(3, 0.2, 16).sum())
    tail = rng.choice(tails, rows, p=rng.dirichlet(np.ones(len(tails)) * 2))
    dest = rng.choice(dests, rows)
    origin = rng.choice(["EWR", "JFK", "LGA"], rows)
    month = rng.integers(1, 13, rows)
    day = rng.integers(1, 29, rows)
    sched_dep = rng.integers(5, 23, rows) * 100 + rng.integers(0, 60, rows)
    hour, minute = sched_dep // 100, sched_dep % 100
    distance = rng.choice(rng.integers(90, 4_983, len(dests)), rows) + rng.integers(0, 5, rows)
    air_time = distance / 7.5 + rng.normal(0, 10, rows)
    # Delays: late hours, some carriers, some tails, summer; heavy right tail.
    tail_effect = dict(zip(tails, rng.normal(0, 8, len(tails)), strict=True))
    carrier_effect = dict(zip(carriers, rng.normal(0, 6, len(carriers)), strict=True))
    dep_delay = (
        (hour - 12) * 1.5
        + np.isin(month, [6, 7, 12]) * 8
        + np.vectorize(carrier_effect.get)(carrier)
        + rng.exponential(12, rows)
        - 5
    )
    arr_delay = (
        dep_delay
        + np.vectorize(tail_effect.get)(tail)
        + (air_time - distance / 7.5) * 0.8
        + rng.normal(0, 8, rows)
    )
    dep_time = (sched_dep + dep_delay.round().astype(int)) % 2400
    when = pd.to_datetime(
        {"year": 2013, "month": month, "day": day, "hour": hour, "minute": minute}
    )
    frame = pd.DataFrame(
        {
            "month": month,
            "day": day,
            "dep_time": dep_time.astype(float),
            "sched_dep_time": sched_dep,
            "dep_delay": dep_delay.round(),
            "sched_arr_time": (sched_dep + (air_time * 100 / 60).astype(int)) % 2400,
            "carrier": carrier,
            "flight": rng.integers(1, 3_800, rows),
            "tailnum": tail.astype(object),
            "origin": origin,
            "dest": dest,
            "air_time": air_time.round(),
            "distance": distance,
            "hour": hour,
            "minute": minute,
            "time_hour": when.dt.strftime("%Y-%m-%d %H:00:00"),
            "seats": rng.choice([50, 100, 150, 180, 300], rows),
            "engines": rng.choice([1, 2, 3, 4], rows, p=[0.05, 0.9, 0.03, 0.02]),
            "arr_delay": arr_delay.round(),
        }
    )
    cancelled = rng.random(rows) < 0.02
    frame.loc[cancelled, ["dep_time", "dep_delay", "air_time"]] = np.nan
    frame.loc[rng.random(rows) < 0.01, "tailnum"] = None
    return frame


def plain_hgb(train: pd.DataFrame, test: pd.DataFrame, target: str, text: list[str]):
    """What a data scientist would write: text as ordinal codes (native categories where
    HistGradientBoosting allows them, <= 255 values), dates as numbers, default params."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    started = time.perf_counter()
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )

    def features(frame: pd.DataFrame, fit: bool) -> pd.DataFrame:
        out = frame.drop(columns=[target, "time_hour"]).copy()
        out[text] = (encoder.fit_transform if fit else encoder.transform)(frame[text])
        out["time_hour"] = pd.to_datetime(frame["time_hour"]).astype("int64") // 3_600_000_000_000
        return out

    x_train = features(train, fit=True)
    native = [c for c, cats in zip(text, encoder.categories_, strict=True) if len(cats) <= 255]
    model = HistGradientBoostingRegressor(categorical_features=native, random_state=0)
    model.fit(x_train, train[target])
    seconds = time.perf_counter() - started
    predicted = model.predict(features(test, fit=False))
    return model, seconds, predicted


def rmse(truth, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(truth) - np.asarray(predicted)) ** 2)))


def main() -> None:
    import cloudpickle
    import yaml

    from core.specs import SplitSpec, TrainerSpec
    from materializers.dataset import Dataset
    from steps.data.split import split_dataset
    from steps.training.train import fit_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=146_000)
    parser.add_argument("--old-default", action="store_true")
    args = parser.parse_args()

    frame = flights(args.rows)
    data = Dataset(frame=frame, target="arr_delay", task="regression", name="flights")
    train, valid, test = split_dataset(data, SplitSpec())
    text = [c for c, kind in data.schema.items() if kind == "categorical"]
    config = yaml.safe_load(open(REPO_ROOT / "configs" / "training.yaml"))["parameters"]
    default = TrainerSpec(**config.get("trainer", {}))

    rows = []

    def measure(label: str, fit) -> None:
        started = time.perf_counter()
        model, predicted, seconds = fit()
        seconds = seconds if seconds is not None else time.perf_counter() - started
        size = len(cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
        rows.append([label, seconds, size, rmse(test.labels, predicted)])
        print(f"  {label}: {seconds:.1f} s, {size:.1f} MB", flush=True)

    def zenkube(spec: TrainerSpec):
        def fit():
            started = time.perf_counter()
            model, _ = fit_model(train, valid, spec)
            seconds = time.perf_counter() - started
            return model, model.predict(test.features), seconds

        return fit

    def plain():
        model, seconds, predicted = plain_hgb(train.frame, test.frame, "arr_delay", text)
        return model, predicted, seconds

    print(
        f"flights-like table: {len(frame):,} rows x {len(data.schema)} features "
        f"(tailnum: {frame['tailnum'].nunique():,} values); train {len(train.frame):,}, "
        f"test {len(test.frame):,}; {os.cpu_count()} cores",
        flush=True,
    )
    measure("plain HistGradientBoosting script", plain)
    measure("zenkube default (configs/training.yaml)", zenkube(default))
    if args.old_default:
        old = TrainerSpec(
            class_path="sklearn.ensemble.RandomForestRegressor",
            params={"n_estimators": 100, "random_state": 0},
            search={"max_depth": [4, None]},
        )
        measure("previous default (forest, one-hot, 2-fit search)", zenkube(old))
    base = rows[0][1]
    print()
    print(
        table(
            "Training at scale (fit on the train split; RMSE on the test split)",
            ["model", "fit s", "size MB", "test RMSE", "x plain"],
            [row + [row[1] / base] for row in rows],
        )
    )
    save(
        "training",
        {
            "rows": len(frame),
            "results": [
                dict(zip(["model", "seconds", "mb", "rmse"], r, strict=True)) for r in rows
            ],
        },
    )


if __name__ == "__main__":
    main()
