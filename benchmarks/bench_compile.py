"""Compile: `python run.py compile` for the five pipelines against a ZenML server, in seconds.

compile registers the stack and each pipeline's snapshot on the ZenML server the pods
report to (a local store is refused), so this starts a real one (tests/zenml_server.py:
its own process and database) and compiles against it twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, isolated_home, save, table


def main() -> None:
    home = isolated_home("compile")
    sys.path.insert(0, str(REPO_ROOT))
    from tests.zenml_server import ZenmlServer

    out = tempfile.mkdtemp(prefix="zenkube-compiled-")
    command = [sys.executable, str(REPO_ROOT / "run.py"), "compile", "--out", out]
    timings = []
    with ZenmlServer(Path(home) / "zenml-server") as server:
        env = {**os.environ, **server.client_env()}
        subprocess.run(  # the secret the stack spec references, as a user creates it
            [str(Path(sys.executable).parent / "zenml"), "secret", "create", "zenkube-mlflow",
             "--username=u", "--password=p"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        for attempt in ("first (stack registration included)", "second"):
            started = time.perf_counter()
            result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
            reported = [line for line in result.stdout.splitlines() if line.startswith("Compiled")]
            timings.append([attempt, seconds, reported[0].split()[-1] if reported else "?"])
    print(
        table(
            "Compile five pipelines to KFP YAML (against a local ZenML server)",
            ["run", "wall s (whole CLI)", "compile step"],
            timings,
        )
    )
    verdict = "met" if timings[1][1] <= 15 else "NOT met"
    print(f"Target: ≤ 15 s → {timings[1][1]:.1f} s for a warm run ({verdict})")
    print(f"JSON: {save('compile', {'runs': timings, 'home': str(home)})}")


if __name__ == "__main__":
    main()
