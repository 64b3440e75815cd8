"""Seconds to recover from kill -9 of each serving process kind (issue #34), under 4
clients posting one row per request: one model served on V2 behind its front and keeper,
as REPLICAS model-server processes (default 2, a user's default: the primary and a warm
standby, integrations/seldon_local/replicas.py), a canary release at 50% of a second
version (as many replicas), and the release watcher (tests/serving/faults.py sets it up,
as the fault test does). `--replicas 1` is the single-server set-up before replicas, to
compare in the same session. The load average is printed before and after: the
seconds a restart takes depend on it.

For each kind, killed in turn (ROUNDS times over): the seconds callers saw failures
after the kill (`outage`: the last failed request's time; 0 when none failed), the
seconds until a new process of that kind did its job (`replaced`), the failed requests,
and whether the endpoint then served the same port, version, protocol and release. The
goal is the endpoint answering again within 15 s of any kill.

    .venv/bin/python benchmarks/bench_faults.py [--rounds 2] [--replicas 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from common import isolated_home, save, table

GOAL_SECONDS = 15.0


def main() -> None:
    isolated_home("faults")  # the release watcher's ZenML and MLflow state
    from tests.serving import faults
    from tests.serving.faults import KINDS, Load, kill_and_recover, served_release

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=faults.REPLICAS)
    args = parser.parse_args()
    faults.REPLICAS = args.replicas  # what served_release starts
    kinds = [k for k in KINDS if k != "standby" or args.replicas > 1]
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="zenkube-faults-") as root:
        with served_release(Path(root)) as served, Load(served.url, served.body) as load:
            start = served.state()
            for _ in range(args.rounds):
                for kind in kinds:
                    results[kind].append(kill_and_recover(served, kind, load))
            answered = load.answered
    rows = []
    for kind, runs in results.items():
        outages = [r["outage"] for r in runs]
        replaced = [r["replaced"] for r in runs if r["replaced"] is not None]
        rows.append(
            [
                kind,
                f"{statistics.median(outages):.2f} (max {max(outages):.2f})",
                f"{statistics.median(replaced):.2f}" if replaced else "never",
                sum(r["failed"] for r in runs),
                all(r["after"] == start for r in runs),
                all(r["outage"] <= GOAL_SECONDS for r in runs) and len(replaced) == len(runs),
            ]
        )
    load_after = os.getloadavg()
    print(
        table(
            f"kill -9 under 4 clients, {args.replicas} replica(s) per model server, "
            f"{args.rounds} round(s) per kind ({answered} requests answered in all; load "
            f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after)",
            ["killed", "outage s (median)", "replaced s", "failed", "same state", "< 15 s"],
            rows,
        )
    )
    save(
        "faults",
        {
            "rounds": args.rounds,
            "replicas": args.replicas,
            "answered": answered,
            "load_average": {"before": load_before, "after": load_after},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
