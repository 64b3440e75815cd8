"""Compile: `python run.py compile` for all three pipelines (fresh store), in seconds."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from common import REPO_ROOT, isolated_home, save, table


def main() -> None:
    home = isolated_home("compile")
    out = tempfile.mkdtemp(prefix="zenkube-compiled-")
    command = [sys.executable, str(REPO_ROOT / "run.py"), "compile", "--out", out]
    timings = []
    for attempt in ("first (store set-up included)", "second"):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
        reported = [line for line in result.stdout.splitlines() if line.startswith("Compiled in")]
        timings.append([attempt, seconds, reported[0].split()[-1] if reported else "?"])
    print(
        table(
            "Compile three pipelines to KFP YAML",
            ["run", "wall s (whole CLI)", "compile step"],
            timings,
        )
    )
    verdict = "met" if timings[1][1] <= 15 else "NOT met"
    print(f"Target: ≤ 15 s → {timings[1][1]:.1f} s for a warm run ({verdict})")
    print(f"JSON: {save('compile', {'runs': timings, 'home': str(home)})}")


if __name__ == "__main__":
    main()
