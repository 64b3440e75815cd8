"""Drift: zenkube's exact path vs a plain scipy ks_2samp loop vs Evidently's default preset.

10 numeric columns, reference = current size. Prints seconds, ratio to the scipy loop,
peak traced memory, and the largest |p-value difference| against Evidently's `ks`.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd
from common import save, table

from core.specs import MonitoringThresholds
from materializers.dataset import Dataset
from steps.monitoring.drift import compute_drift


def frames(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(rng.normal(size=(rows, 10)), columns=[f"c{i}" for i in range(10)])
    current = pd.DataFrame(rng.normal(size=(rows, 10)), columns=reference.columns)
    current["c0"] += 0.05
    return reference, current


def timed(fn):
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def scipy_loop(reference, current):
    from scipy.stats import ks_2samp

    return {c: ks_2samp(reference[c], current[c]).pvalue for c in reference.columns}


def evidently(reference, current, method=None):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset(method=method) if method else DataDriftPreset()
    snapshot = Report([preset]).run(current_data=current, reference_data=reference)
    return {
        m["config"]["column"]: m["value"]
        for m in snapshot.dict()["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--evidently-max",
        type=int,
        default=100_000,
        help="largest size to also run Evidently's default preset on (it is slow)",
    )
    args = parser.parse_args()
    rows_out, results = [], []
    for rows in [int(s) for s in args.sizes.split(",")]:
        reference, current = frames(rows)
        data = Dataset(frame=reference.assign(y=0), target="y", task="classification")
        ours, t_ours, m_ours = timed(
            lambda d=data, c=current: compute_drift(d, c, MonitoringThresholds())
        )
        base, t_scipy, m_scipy = timed(lambda r=reference, c=current: scipy_loop(r, c))
        ks_check = evidently(reference.head(20_000), current.head(20_000), method="ks")
        ours_small = compute_drift(
            Dataset(frame=reference.head(20_000).assign(y=0), target="y", task="classification"),
            current.head(20_000),
            MonitoringThresholds(),
        )
        diff = max(abs(c.p_value - ks_check[c.column]) for c in ours_small.columns)
        t_evid = None
        if rows <= args.evidently_max:
            _, t_evid, _ = timed(lambda r=reference, c=current: evidently(r, c))
        rows_out.append(
            [
                rows,
                t_ours,
                t_scipy,
                t_ours / t_scipy,
                t_evid or "skipped",
                m_ours,
                m_scipy,
                f"{diff:.1e}",
            ]
        )
        results.append(
            {
                "rows": rows,
                "zenkube_s": t_ours,
                "scipy_loop_s": t_scipy,
                "ratio_to_scipy": t_ours / t_scipy,
                "evidently_default_s": t_evid,
                "zenkube_peak_mib": m_ours,
                "scipy_peak_mib": m_scipy,
                "max_p_value_diff_vs_evidently_ks": diff,
            }
        )
    print(
        table(
            "Drift (10 numeric columns)",
            [
                "rows",
                "zenkube s",
                "scipy loop s",
                "ratio",
                "evidently default s",
                "zenkube peak MiB",
                "scipy peak MiB",
                "max |Δp| vs evidently ks",
            ],
            rows_out,
        )
    )
    largest = results[-1]
    verdict = "met" if largest["ratio_to_scipy"] <= 2 else "NOT met"
    print(
        f"Target at {largest['rows']:,} rows: ≤ 2× the scipy loop → {largest['ratio_to_scipy']:.2f}× ({verdict})"
    )
    print(f"JSON: {save('drift', {'rows': results})}")


if __name__ == "__main__":
    main()
