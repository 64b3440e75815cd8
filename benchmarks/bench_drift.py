"""Drift: false alarms and detection power of the p-value rule and the effect rule, and
zenkube's exact path vs a plain scipy ks_2samp loop vs Evidently's default preset.

Alert rates: a skewed population (gamma, shape 2; 4M values) is resampled into a reference
and a current sample of the same size (10k, 100k, 1M rows), the current one shifted by
0, 0.02 or 0.3 population standard deviations; each trial is one column tested as
`compute_drift` tests it. The old rule alerts when p < 0.05; the new one when also the
effect (Wasserstein / reference SD) is at least 0.1 (the defaults).

Timing: 10 numeric columns, reference = current size. Prints seconds, ratio to the scipy
loop, peak traced memory, and the largest |p-value difference| against Evidently's `ks`.
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


SHIFTS = (0.0, 0.02, 0.3)


def alert_rates(sizes: list[int], trials: int, seed: int = 0) -> list[dict]:
    """Old-rule and new-rule alert rates per size and shift, over `trials` resamples."""
    from steps.monitoring.drift import numeric_drift

    thresholds = MonitoringThresholds()
    p_threshold, min_effect = thresholds.for_column("x", "numeric")
    rng = np.random.default_rng(seed)
    population = rng.gamma(2.0, size=4_000_000)
    spread = float(population.std())
    results = []
    for rows in sizes:
        for shift in SHIFTS:
            old = new = 0
            effects, seconds = [], 0.0
            for _ in range(trials):
                reference = rng.choice(population, rows)
                current = rng.choice(population, rows) + shift * spread
                started = time.perf_counter()
                _, p_value, effect = numeric_drift(reference, current)
                seconds += time.perf_counter() - started
                old += p_value < p_threshold
                new += p_value < p_threshold and effect >= min_effect
                effects.append(effect)
            results.append(
                {
                    "rows": rows,
                    "shift_sd": shift,
                    "trials": trials,
                    "old_rule_alert_rate": old / trials,
                    "new_rule_alert_rate": new / trials,
                    "mean_effect": float(np.mean(effects)),
                    "max_effect": float(np.max(effects)),
                    "seconds_per_column": seconds / trials,
                }
            )
            print(
                f"  {rows:>9,} rows, shift {shift:<4} SD: old {old}/{trials}, new {new}/{trials}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--trials", type=int, default=30, help="resamples per size and shift")
    parser.add_argument("--skip-timing", action="store_true", help="alert rates only")
    parser.add_argument(
        "--evidently-max",
        type=int,
        default=100_000,
        help="largest size to also run Evidently's default preset on (it is slow)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"Alert rates over {args.trials} trials per cell:", flush=True)
    rates = alert_rates(sizes, args.trials)
    print(
        table(
            "Alert rate: p-value rule (old) vs significant AND effect ≥ 0.1 (new)",
            ["rows", "shift (SD)", "old rule", "new rule", "mean W/σ", "max W/σ", "s/column"],
            [
                [
                    r["rows"],
                    r["shift_sd"],
                    f"{r['old_rule_alert_rate']:.0%}",
                    f"{r['new_rule_alert_rate']:.0%}",
                    r["mean_effect"],
                    r["max_effect"],
                    r["seconds_per_column"],
                ]
                for r in rates
            ],
        )
    )
    largest = max(sizes)
    tiny = next(r for r in rates if r["rows"] == largest and r["shift_sd"] == 0.02)
    real = [r for r in rates if r["shift_sd"] == 0.3]
    quiet = tiny["new_rule_alert_rate"] <= 0.05
    power = all(r["new_rule_alert_rate"] >= 0.95 for r in real)
    powers = ", ".join(f"{r['new_rule_alert_rate']:.0%}" for r in real)
    print(
        f"Target: at {largest:,} rows a 0.02-SD shift alerts in ≤ 5% of trials with the new "
        f"rule → {tiny['new_rule_alert_rate']:.0%} (old rule {tiny['old_rule_alert_rate']:.0%}) "
        f"({'met' if quiet else 'NOT met'}); a 0.3-SD shift alerts in ≥ 95% at every size → "
        f"{powers} "
        f"({'met' if power else 'NOT met'})"
    )
    rows_out, results = [], []
    for rows in [] if args.skip_timing else sizes:
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
    if not results:
        print(f"JSON: {save('drift', {'alert_rates': rates})}")
        return
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
    print(f"JSON: {save('drift', {'alert_rates': rates, 'rows': results})}")


if __name__ == "__main__":
    main()
