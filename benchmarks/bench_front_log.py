"""A client sending malformed HTTP to the model's front: 100,000 requests with a header
aiohttp refuses (the issue's ~3 GB/hour of tracebacks). Prints the front's log size
against its cap, the requests per second it refused, and whether it still serves.

    .venv/bin/python benchmarks/bench_front_log.py [--requests 100000] [--cap 1000000]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from integrations.seldon_local import process  # noqa: E402
from integrations.seldon_local.front import ModelFront  # noqa: E402

BAD = b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: " + b"v" * 2000 + b"\r\n\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--cap", type=int, default=1_000_000, help="ZENKUBE_LOG_MAX_BYTES")
    args = parser.parse_args()
    os.environ["ZENKUBE_LOG_MAX_BYTES"] = str(args.cap)
    with tempfile.TemporaryDirectory() as folder:
        front = ModelFront(folder, "bench")
        front.start(process.free_port(), process.free_port(), served={"protocol": "seldon"})
        try:
            started, largest = time.perf_counter(), 0
            for i in range(args.requests):
                with socket.create_connection(("127.0.0.1", front.port), timeout=10) as conn:
                    conn.sendall(BAD)
                    conn.recv(256)
                if i % 1000 == 0:
                    largest = max(largest, front.log_file.stat().st_size)
            seconds = time.perf_counter() - started
            time.sleep(1.5)  # one more round of the front's log check
            size = front.log_file.stat().st_size
            alive = requests.get(f"http://127.0.0.1:{front.port}/metrics", timeout=5).ok
        finally:
            front.stop()
    print(f"malformed requests      {args.requests:,} in {seconds:.1f}s "
          f"({args.requests / seconds:,.0f}/s)")  # fmt: skip
    print(f"router.log (cap {args.cap:,} B): largest seen {largest:,} B, at the end {size:,} B")
    print(f"front still serving     {alive}")


if __name__ == "__main__":
    main()
