"""The command line on a prepared clone (issues #33 and #34): the store and stack are
prepared once, read-only commands never import ZenML (nor MLflow), and commands run side
by side neither crash nor lose an update. One served model for the whole module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.session import PREPARING
from tests.conftest import REPO_ROOT, cli_in

MODEL = "side-model"
PREPARED_LINE = PREPARING.format(stack="local")
READ_ONLY = [
    ["serve", "status"],
    ["history", "--model-name", MODEL],
    ["release", "status", "--model-name", MODEL],
    ["monitor", "history", "--model-name", MODEL],
    ["stack", "show"],
]
# Each round is one more chance at a race, not a different case: the four reads finish
# within a second of starting beside the deploy, so a round costs one deploy (~14 s).
# ZENKUBE_SIDE_BY_SIDE_ROUNDS=20 soaks it (as before a concurrency change).
ROUNDS = int(os.environ.get("ZENKUBE_SIDE_BY_SIDE_ROUNDS", "5"))

# Runs run.py in this process's interpreter and writes which heavy packages it imported.
PROBE = """
import json, os, runpy, sys
sys.argv = ["run.py", *json.loads(os.environ["PROBE_ARGS"])]
try:
    runpy.run_path("run.py", run_name="__main__")
except SystemExit:
    pass
finally:
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"zenml", "mlflow", "sklearn"})
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump(heavy, f)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A trained and served champion; the outputs of the first two commands."""
    cli = cli_in(tmp_path_factory.mktemp("side"))
    trained = cli("train", "--model-name", MODEL)
    assert trained.returncode == 0, trained.stderr
    deployed = cli("deploy", "--model-name", MODEL)
    assert deployed.returncode == 0, deployed.stderr
    cli.outputs = (trained.stdout, deployed.stdout)
    yield cli
    from tests.conftest import stop_servers_under

    stop_servers_under(cli.home / "serving")


def env_of(cli) -> dict:
    return {
        **os.environ,
        "ZENKUBE_HOME": str(cli.home),
        "ZENML_CONFIG_PATH": str(cli.home / "zenml"),
        "ZENML_REPOSITORY_PATH": str(cli.home.parent / "repo"),
    }


def test_the_store_is_prepared_once_and_again_only_when_the_spec_changes(served):
    trained, deployed = served.outputs
    assert PREPARED_LINE in trained  # the first command of the clone
    assert PREPARED_LINE not in deployed  # nothing changed since
    again = served("stack", "show")
    assert again.returncode == 0 and PREPARED_LINE not in again.stdout
    assert "zenkube-local" in again.stdout and "seldon_local" in again.stdout

    record_file = served.home / "prepared.json"
    record = json.loads(record_file.read_text())
    record["key"]["spec_sha256"] = "a spec that changed"
    record_file.write_text(json.dumps(record))
    changed = served("stack", "show")
    assert changed.returncode == 0 and PREPARED_LINE in changed.stdout
    assert PREPARED_LINE not in served("stack", "show").stdout


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_imports_neither_zenml_nor_mlflow(served, command, tmp_path):
    out = tmp_path / "modules.json"
    env = {**env_of(served), "PROBE_ARGS": json.dumps(command), "PROBE_OUT": str(out)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(out.read_text()) == []
    assert PREPARED_LINE not in result.stdout
    if command[0] == "serve":
        assert f"{MODEL} v1 [seldon] up" in result.stdout
    if command[0] == "history":
        assert f"Champion of '{MODEL}': v1" in result.stdout
    if command[0] == "monitor":  # its reading of runs: tests/pipelines/test_monitoring.py
        assert f"No monitoring runs of '{MODEL}' yet" in result.stdout


HELP_PROBE = """
import json, os, runpy, sys
import click
from click.testing import CliRunner
sys.path.insert(0, ".")
cli = runpy.run_path("run.py")["cli"]
paths = [[]]
def walk(group, prefix):
    for name, command in group.commands.items():
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            walk(command, [*prefix, name])
walk(cli, [])
for args in paths:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output, (args, result.output)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"zenml", "mlflow", "sklearn"})
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"heavy": heavy, "helped": len(paths)}, f)
"""


def test_every_help_imports_neither_zenml_nor_mlflow(tmp_path):
    """Every command's `--help` in one process: any of them importing ZenML would show."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "ZENKUBE_HOME": str(tmp_path / "home"), "PROBE_OUT": str(out)}
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    found = json.loads(out.read_text())
    assert found["heavy"] == [] and found["helped"] > 20


def test_five_commands_at_once_never_crash_nor_lose_an_update(served):
    """ROUNDS rounds of serve status, history, release status, monitor history and deploy
    started together: each succeeds (or waits and says so), no traceback anywhere, and
    afterwards one served record, the same champion and history, nothing in the log."""
    log = served.home / "logs" / "zenkube.log"
    before_log = log.stat().st_size if log.exists() else 0
    history_before = served("history", "--model-name", MODEL).stdout
    commands = [
        ["serve", "status", "--model-name", MODEL],
        ["history", "--model-name", MODEL],
        ["release", "status", "--model-name", MODEL],
        ["monitor", "history", "--model-name", MODEL],
        ["deploy", "--model-name", MODEL],
    ]
    env = env_of(served)
    for round_number in range(ROUNDS):
        started = [
            subprocess.Popen(
                [sys.executable, "run.py", *command],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        for command, process in zip(commands, started, strict=True):
            out, err = process.communicate(timeout=600)
            said = f"round {round_number}, {' '.join(command)}:\n{out}\n{err}"
            if process.returncode != 0 and log.exists():  # the traceback the log keeps
                said += "\nzenkube.log:\n" + log.read_text(errors="replace")[before_log:][-6000:]
            assert process.returncode == 0, said
            assert "Traceback" not in out + err and "Unexpected error" not in err, said
            assert PREPARED_LINE not in out, said
    status = served("serve", "status", "--model-name", MODEL).stdout
    assert status.count(f"{MODEL} v1 [seldon] up") == 1, status
    assert served("history", "--model-name", MODEL).stdout == history_before
    written = log.read_text(errors="replace")[before_log:] if log.exists() else ""
    assert "unexpected error" not in written and "Traceback" not in written
