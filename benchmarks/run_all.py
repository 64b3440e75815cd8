"""`make bench`: run every benchmark and print its table (each writes benchmarks/results/*.json)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_batch.py",
    "bench_cli.py",
    "bench_compile.py",
    "bench_drift.py",
    "bench_gate.py",
    "bench_loop.py",
    "bench_monitor_memory.py",
    "bench_pipeline.py",
    "bench_release.py",
    "bench_serving.py",
    "bench_server_start.py",
    "bench_swap.py",
    "bench_training.py",
]


def main() -> int:
    failed = []
    started = time.monotonic()
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE).returncode != 0:
            failed.append(script)
    print(
        f"\nAll benchmarks took {time.monotonic() - started:.0f}s."
        + (f" Failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
