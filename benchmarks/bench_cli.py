"""The command line on a prepared clone (issue #33): each command's wall time, median of
5, beside `zenml stack list` and an `mlflow models list`-equivalent read of the same
registry in the same run (round-robin, so the machine's load weighs on all alike); and
the fixed cost of `train` and `deploy`: from the command to their first step starting.

Targets: read-only commands ≤ 2 s and ≤ 1.5× `zenml stack list`; train's fixed cost
≤ 5 s. ZENKUBE_BENCH_REPEATS=N changes the 5; train and deploy run in the first
ZENKUBE_BENCH_PIPELINE_REPEATS (3) rounds.

Train also runs in the warm worker (`run.py warm start`, app/warm.py: ZenML, MLflow and
scikit-learn imported once, each command a fork of it), beside ZenML's own floor: a
one-step pipeline with nothing of ours on the same store and stack (zenml_floor.py).

Train also runs as an environment without bytecode runs it (the baseline of the same
rounds): `make setup` installs with `uv pip install --compile-bytecode`, but uv compiles
nothing by default, and with PYTHONDONTWRITEBYTECODE=1 (set in this project's machines and
in the step image) Python then compiles every imported module's source at every start.
PYTHONPYCACHEPREFIX pointing at an empty folder makes Python find no .pyc, as there.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, isolated_home, save, table

MODEL = "bench-cli"
REPEATS = int(os.environ.get("ZENKUBE_BENCH_REPEATS", "5"))
# train and deploy take a minute each on a busy 2-core machine: fewer of them by default
PIPELINE_REPEATS = int(os.environ.get("ZENKUBE_BENCH_PIPELINE_REPEATS", "3"))
RUN = [sys.executable, str(REPO_ROOT / "run.py")]
FLOOR = [sys.executable, str(REPO_ROOT / "benchmarks" / "zenml_floor.py")]
READ_ONLY = {
    "--help": [*RUN, "--help"],
    "serve status": [*RUN, "serve", "status"],
    "history": [*RUN, "history", "--model-name", MODEL],
    "release status": [*RUN, "release", "status", "--model-name", MODEL],
    "stack show": [*RUN, "stack", "show"],
}
ZENML = str(REPO_ROOT / ".venv" / "bin" / "zenml")
# What `mlflow models list` would be (MLflow's CLI has no such command): the registry's
# models through MLflow's own client, on the same SQLite file the commands read.
MLFLOW_LIST = (
    "import sys; from mlflow.tracking import MlflowClient; "
    "print([m.name for m in MlflowClient(sys.argv[1], sys.argv[1]).search_registered_models()])"
)


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def until_first_step(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """(seconds until ZenML says the first step started, seconds in all); --verbose puts
    ZenML's own `Step ... has started` line on the console."""
    started = time.perf_counter()
    first = None
    with subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env,
    ) as process:  # fmt: skip
        for line in process.stdout:
            if first is None and "has started" in line and "Step" in line:
                first = time.perf_counter() - started
        process.wait()
    if process.returncode != 0 or first is None:
        raise SystemExit(f"{command} failed or started no step")
    return first, time.perf_counter() - started


def bytecode_compiled() -> bool:
    """Whether the environment's packages carry their .pyc (zenml's, as a sample)."""
    from importlib.util import find_spec

    folder = Path(find_spec("zenml").submodule_search_locations[0])  # not imported here
    return any(folder.joinpath("__pycache__").glob("*.pyc"))


def without_bytecode(folder: str) -> dict:
    """The environment of a process that finds no .pyc and writes none."""
    return {**cold(), "PYTHONPYCACHEPREFIX": folder, "PYTHONDONTWRITEBYTECODE": "1"}


def cold() -> dict:
    """The environment of a command that runs in its own process though a worker runs."""
    return {**os.environ, "ZENKUBE_WARM": "0"}


def main() -> None:
    try:
        measure()
    finally:
        subprocess.run([*RUN, "serve", "stop"], cwd=REPO_ROOT, capture_output=True)
        subprocess.run([*RUN, "warm", "stop"], cwd=REPO_ROOT, capture_output=True)


def measure() -> None:
    home = isolated_home("cli")
    os.environ["ZENML_LOGGING_VERBOSITY"] = "INFO"  # ZenML's "Step ... has started" lines
    tracking_uri = f"sqlite:///{home}/artifacts/mlflow.db"
    print("Preparing a clone: train and serve one model...", flush=True)
    first_train = until_first_step([*RUN, "--verbose", "train", "--model-name", MODEL])
    wall([*RUN, "deploy", "--model-name", MODEL])
    baselines = {
        "zenml stack list": [ZENML, "stack", "list"],
        "mlflow models list (client)": [sys.executable, "-c", MLFLOW_LIST, tracking_uri],
    }
    timed = {**READ_ONLY, "monitor history": [*RUN, "monitor", "history", "--model-name", MODEL]}
    samples: dict[str, list[float]] = {name: [] for name in [*timed, *baselines]}
    if not bytecode_compiled():
        print("Note: this environment's packages have no .pyc: run `make setup` on a fresh "
              "clone (uv --compile-bytecode); both train rows then measure the same.")  # fmt: skip
    no_pyc = tempfile.mkdtemp(prefix="zenkube-no-pyc-")
    wall([*RUN, "warm", "start"])  # in this environment: train's warm rows use it
    names = ["train", "train (warm worker)", "zenml one-step pipeline", "train (no bytecode)"]
    names += ["deploy", "deploy (warm worker)"]
    fixed = {name: [] for name in names}
    totals = {name: [] for name in names}
    for repeat in range(REPEATS):
        print(f"Round {repeat + 1} of {REPEATS}...", flush=True)
        for name, command in {**timed, **baselines}.items():
            samples[name].append(wall(command))
        if repeat >= PIPELINE_REPEATS:
            continue
        train = [*RUN, "--verbose", "train", "--model-name", MODEL]
        deploy = [*RUN, "--verbose", "deploy", "--model-name", MODEL]
        for name, command, env in (
            ("train", train, cold()),
            ("train (warm worker)", train, None),
            ("zenml one-step pipeline", FLOOR, cold()),
            ("train (no bytecode)", train, without_bytecode(no_pyc)),
            ("deploy", deploy, cold()),
            ("deploy (warm worker)", deploy, None),
        ):
            before, total = until_first_step(command, env)
            fixed[name].append(before)
            totals[name].append(total)
    median = {name: statistics.median(values) for name, values in samples.items()}
    zenml_list = median["zenml stack list"]
    rows = []
    for name in [*timed, *baselines]:
        ratio = median[name] / zenml_list
        target = ""
        if name in READ_ONLY:
            target = "met" if median[name] <= 2 and ratio <= 1.5 else "NOT met"
        rows.append([name, median[name], min(samples[name]), max(samples[name]), ratio, target])
    print(
        table(
            f"Commands on a prepared clone, wall seconds (median of {REPEATS})",
            ["command", "median", "min", "max", "× zenml stack list", "≤ 2 s and ≤ 1.5×"],
            rows,
        )
    )
    fixed_rows = [
        [name, statistics.median(fixed[name]), statistics.median(totals[name])] for name in fixed
    ]
    print(
        table(
            f"Pipeline commands: until the first step starts (median of {PIPELINE_REPEATS})",
            ["command", "fixed cost s", "whole command s"],
            fixed_rows,
        )
    )
    train_fixed = statistics.median(fixed["train"])
    warm_fixed = statistics.median(fixed["train (warm worker)"])
    floor = statistics.median(fixed["zenml one-step pipeline"])
    verdict = "met" if train_fixed <= 5 else "NOT met"
    print(f"Target: train's fixed cost ≤ 5 s → {train_fixed:.1f} s ({verdict}); in the warm "
          f"worker {warm_fixed:.1f} s ({'met' if warm_fixed <= 5 else 'NOT met'}); ZenML's "
          f"one-step pipeline {floor:.1f} s, so zenkube's part {train_fixed - floor:.1f} s; "
          f"without bytecode {statistics.median(fixed['train (no bytecode)']):.1f} s")  # fmt: skip
    print(
        f"First train of the clone (preparation included): {first_train[0]:.1f} s to its first step"
    )
    payload = {
        "repeats": REPEATS,
        "pipeline_repeats": PIPELINE_REPEATS,
        "samples": samples,
        "medians": median,
        "fixed_cost": fixed,
        "totals": totals,
        "first_train": first_train,
        "load_average": os.getloadavg(),
        "bytecode_compiled": bytecode_compiled(),
        "home": str(home),
    }
    print(f"JSON: {save('cli', payload)}")


if __name__ == "__main__":
    main()
