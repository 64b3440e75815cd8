"""Batch scoring: zenkube's in-process batch scoring (`steps/inference/score.py`, what
`run.py predict --output` runs) against a plain script — `pandas.read_parquet`,
`model.predict`, `to_parquet` — on the same file, model and machine, in the same run.

1,000,000 rows x 30 numeric columns (generated), a RandomForestClassifier (100 trees)
trained by zenkube on 5,000 rows of the same distribution. Each side runs in a
child process, so its peak RSS (VmHWM) is its own; the baseline is the child's RSS once
its imports are done and the model is loaded, and "data peak" is the peak above it.
Targets: rows/s >= 0.8x the plain script's, and peak RSS <= 1.5x the input's in-memory size.
The input is written in row groups of 100,000 rows (--row-group-rows; zenkube's own Parquet
files use the same): zenkube holds one row group at a time.
With --pipeline it also runs the whole `batch_inference` pipeline (drift check included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import frame, isolated_home, local_store, save, table, train_big

HOME = Path(os.environ["ZENKUBE_HOME"]) if "--child" in sys.argv else isolated_home("batch")


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def plain(model_dir: str, source: str, out: str) -> dict:
    import mlflow.sklearn
    import pandas as pd

    model = mlflow.sklearn.load_model(model_dir)
    baseline = rss_mb("VmRSS")
    started = time.perf_counter()
    data = pd.read_parquet(source)
    pd.DataFrame({"prediction": model.predict(data)}).to_parquet(out, index=False)
    return {"seconds": time.perf_counter() - started, "baseline": baseline}


def zenkube(model_dir: str, source: str, out: str) -> dict:
    from integrations.mlflow import registry as mlflow_registry
    from integrations.seldon_local.runtime import validation
    from steps.inference.score import ScoringModel, score_file

    model = ScoringModel(
        model=mlflow_registry.load_model(model_dir),
        columns=validation.read_schema(model_dir),
        name="big",
        version="1",
    )
    baseline = rss_mb("VmRSS")
    started = time.perf_counter()
    score_file(model, source, out)
    return {"seconds": time.perf_counter() - started, "baseline": baseline}


def pipeline(model_dir: str, source: str, out: str) -> dict:
    local_store()
    from app import batch

    baseline = rss_mb("VmRSS")
    started = time.perf_counter()
    batch.predict(None, {"model_name": "big", "input_path": source, "output_path": out})
    return {"seconds": time.perf_counter() - started, "baseline": baseline}


def child(kind: str, model_dir: str, source: str, out: str) -> None:
    result = {"plain": plain, "zenkube": zenkube, "pipeline": pipeline}[kind](
        model_dir, source, out
    )
    print(json.dumps({**result, "peak": rss_mb("VmHWM")}))


def run_child(kind: str, model_dir: str, source: Path, out: Path) -> dict:
    answer = subprocess.run(
        [sys.executable, __file__, "--child", kind, model_dir, str(source), str(out)],
        capture_output=True,
        text=True,
    )
    if answer.returncode != 0:
        print(answer.stdout[-3000:], answer.stderr[-3000:])
        raise SystemExit(f"the {kind} run failed")
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pipeline", action="store_true", help="also run the whole pipeline")
    parser.add_argument(
        "--row-group-rows",
        type=int,
        default=100_000,
        help="rows per Parquet row group of the input (zenkube reads one group at a time; "
        "pandas' default is 1,048,576)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    local_store()
    import mlflow
    import pandas as pd

    from integrations.mlflow import registry as mlflow_registry

    data_dir = HOME / "data"
    forest = "sklearn.ensemble.RandomForestClassifier"  # the figures in docs/performance.md §11
    train_big(data_dir, **{"trainer.class_path": forest})
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.get_champion("big")
    model_dir = mlflow.artifacts.download_artifacts(
        artifact_uri=champion.artifact_location, dst_path=str(data_dir / "model")
    )
    batch = frame(args.rows, 1, labels=False)
    input_mb = batch.memory_usage(deep=True).sum() / 2**20
    source = data_dir / "batch.parquet"
    batch.to_parquet(source, index=False, row_group_size=args.row_group_rows)
    del batch
    results = {}
    kinds = ["plain", "zenkube"] + (["pipeline"] if args.pipeline else [])
    for kind in kinds:
        out = data_dir / f"{kind}.parquet"
        results[kind] = run_child(kind, model_dir, source, out)
        results[kind]["rows_per_s"] = args.rows / results[kind]["seconds"]
        if kind != "plain":  # the same answers as the plain script
            plain_answers = pd.read_parquet(data_dir / "plain.parquet")["prediction"]
            ours = pd.read_parquet(out, columns=["prediction"])["prediction"]
            assert plain_answers.equals(ours), f"{kind}: predictions differ from model.predict"
    base = results["plain"]
    rows = []
    for kind in kinds:
        r = results[kind]
        rows.append(
            [
                kind,
                r["seconds"],
                r["rows_per_s"],
                r["rows_per_s"] / base["rows_per_s"],
                r["peak"],
                r["peak"] / input_mb,
                r["peak"] - r["baseline"],
                (r["peak"] - r["baseline"]) / input_mb,
            ]
        )
    print(
        table(
            f"batch scoring, {args.rows:,} rows x 30 columns ({input_mb:,.0f} MB in memory, "
            f"row groups of {args.row_group_rows:,}); "
            "targets: rows/s >= 0.8x plain, peak RSS <= 1.5x input",
            ["", "seconds", "rows/s", "x plain", "peak RSS MB", "x input",
             "data peak MB", "x input"],
            rows,
        )
    )  # fmt: skip
    z = results["zenkube"]
    print(
        f"\nzenkube / plain rows/s: {z['rows_per_s'] / base['rows_per_s']:.2f}x (target >= 0.8x)"
        f"\nzenkube peak RSS / input in memory: {z['peak'] / input_mb:.2f}x (target <= 1.5x); "
        f"above its loaded-model baseline: {(z['peak'] - z['baseline']) / input_mb:.2f}x"
    )
    save(
        "batch",
        {"rows": args.rows, "row_group_rows": args.row_group_rows, "input_mb": input_mb,
         "results": results},
    )  # fmt: skip


if __name__ == "__main__":
    main()
