"""Monitoring a big batch: peak memory and time of `monitor` on 1,000,000 rows x 30
numeric columns without labels (the issue measured 2.7 GB peak RSS, 33 s, the batch
stored twice), and how many copies of the batch the run stores.

The monitoring run happens in a child process so its peak RSS is its own (the champion is
trained first, in the parent, on 5,000 rows of the same distribution).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import COLUMNS, frame, isolated_home, local_store, save, table, train_big

# The child reuses the parent's store (inherited through the environment).
HOME = Path(os.environ["ZENKUBE_HOME"]) if "--child" in sys.argv else isolated_home("monitor-mem")


def child(batch: str) -> None:
    """Run the monitoring loop on `batch`; print seconds as JSON (RSS is read by the parent)."""
    local_store()
    from app import loop

    started = time.perf_counter()
    result = loop.monitor(
        None, {"model_name": "big", "batch": batch}, redeploy=False, echo=lambda *_: None
    )
    print(json.dumps({"seconds": time.perf_counter() - started, "run": result.run_name}))


def stored_copies(rows: int) -> tuple[int, float]:
    """Copies of the batch in the artifact store (`rows` rows, all 30 columns): (how
    many, their MB on disk)."""
    import pyarrow.parquet as pq

    count, size = 0, 0.0
    for path in (HOME / "artifacts").rglob("*.parquet"):
        try:
            meta = pq.ParquetFile(path).metadata
            if meta.num_rows == rows and meta.num_columns >= len(COLUMNS):
                count += 1
                size += path.stat().st_size / 2**20
        except Exception:
            continue
    return count, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    local_store()

    data_dir = HOME / "data"
    train_big(data_dir)
    batch = data_dir / "batch.parquet"
    frame(args.rows, 1, labels=False).to_parquet(batch, index=False)
    before = stored_copies(args.rows)[0]
    answer = subprocess.run(
        [sys.executable, __file__, "--child", str(batch)], capture_output=True, text=True
    )
    if answer.returncode != 0:
        print(answer.stdout[-3000:], answer.stderr[-3000:])
        raise SystemExit("the monitoring run failed")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    seconds = json.loads(answer.stdout.strip().splitlines()[-1])["seconds"]
    copies, size = stored_copies(args.rows)
    copies -= before
    rows = [[f"{args.rows:,} x 30", seconds, peak_mb, copies, size]]
    print(
        table(
            "monitor on a big unlabelled batch (before: 33 s, 2,700 MB, 2 copies)",
            ["batch", "seconds", "peak RSS MB", "copies stored", "stored MB"],
            rows,
        )
    )
    save("monitor_memory", {"rows": args.rows, "seconds": seconds, "peak_rss_mb": peak_mb,
                            "copies": copies, "stored_mb": size})  # fmt: skip


if __name__ == "__main__":
    main()
