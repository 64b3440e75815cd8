"""A model server's start, from spawn to healthy (what every deploy, standby and restart
waits for), with its environment's bytecode and as an environment without it starts: the
baseline in the same run.

The model-server environments are built with `uv pip install --compile-bytecode`
(integrations/seldon_local/environments.py). Before, uv compiled nothing and, with
PYTHONDONTWRITEBYTECODE=1 (set on these machines and in CI), every server start compiled
mlflow, MLServer, pandas... from source. PYTHONPYCACHEPREFIX pointing at an empty folder
makes Python find no .pyc, as then. Round-robin, median of ZENKUBE_BENCH_REPEATS (3).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, save, table

REPEATS = int(os.environ.get("ZENKUBE_BENCH_REPEATS", "3"))


def start_once(protocol: str, model_dir: Path, log: Path, env: dict) -> float:
    from integrations.seldon_local import process
    from integrations.seldon_local.environments import runtime_python

    proto, port = process.get_protocol(protocol), process.free_port()
    command = proto.command(runtime_python(protocol), model_dir, "classifier", port, 1)
    started = time.monotonic()
    pid = process.spawn(command, log, env, False)
    try:
        process.wait_healthy(pid, proto.url(port, "classifier", proto.health_path), log, 300)
        return time.monotonic() - started
    finally:
        process.stop_group(pid, 10)


def main() -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from integrations.mlflow.registry import PICKLE_ENV
    from integrations.seldon_local import process
    from tests.serving import release_models

    root = Path(tempfile.mkdtemp(prefix="zenkube-bench-start-"))
    try:
        model_dir = release_models.models(root / "models", ("champion",))["champion"]
        base = {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST, "PYTHONDONTWRITEBYTECODE": "1"}
        ways = {
            "with bytecode (now)": base,
            "without (before)": {**base, "PYTHONPYCACHEPREFIX": str(root / "no-pyc")},
        }
        times: dict[tuple[str, str], list[float]] = {}
        for protocol in ("seldon", "v2"):
            for i in range(REPEATS):
                for way, env in ways.items():
                    took = start_once(protocol, model_dir, root / f"{protocol}-{i}.log", env)
                    times.setdefault((protocol, way), []).append(took)
                    print(f"  {protocol} {way}: {took:.1f} s", flush=True)
        rows = []
        for protocol in ("seldon", "v2"):
            now, before = (statistics.median(times[(protocol, w)]) for w in ways)
            rows.append([protocol, now, before, before / now])
        print(
            table(
                f"Model-server start to healthy, median of {REPEATS} (s); load "
                f"{os.getloadavg()[0]:.1f}",
                ["protocol", "with bytecode", "without", "ratio"],
                rows,
            )
        )
        save("server_start", {"repeats": REPEATS, "rows": rows})
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
