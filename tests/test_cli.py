"""The command line as a user meets it: --help everywhere, and errors without tracebacks."""

from __future__ import annotations

import os

import pytest

from tests.conftest import cli_in


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    return cli_in(tmp_path_factory.mktemp("cli"))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["train"],
        ["deploy"],
        ["predict"],
        ["monitor"],
        ["monitor", "history"],
        ["serve"],
        ["stack"],
        ["stack", "check"],
        ["compile"],
        ["schedule"],
        ["champion"],
        ["history"],
        ["rollback"],
        ["release"],
        ["release", "start"],
        ["release", "status"],
        ["release", "check"],
        ["release", "schedule"],
        ["warm"],
        ["warm", "start"],
        ["warm", "stop"],
        ["warm", "status"],
    ],
)
def test_every_command_explains_itself(cli, command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout
    assert len(result.stdout.splitlines()) > 4


def explained(result, *phrases: str) -> None:
    """What bad input gets: exit 2, each phrase said on stderr, no traceback anywhere."""
    assert result.returncode == 2, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_data_file_is_one_message_without_traceback(cli, tmp_path):
    result = cli("train", "--dataset", str(tmp_path / "missing.csv"), "--target", "y")
    explained(result, "Error: Data file not found")


def test_misspelt_config_key_is_named(cli, tmp_path):
    config = tmp_path / "training.yaml"
    config.write_text("parameters:\n  trainer:\n    class_pth: sklearn.dummy.DummyClassifier\n")
    explained(cli("train", "--config", str(config)), "unknown key `parameters.trainer.class_pth`")


def test_predict_before_any_deployment_says_what_to_do(cli, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    result = cli("predict", "--input", str(rows))
    explained(result, "Nothing is deployed yet. Run `python run.py deploy` first.")


def test_a_failing_step_prints_one_paragraph_and_keeps_the_traceback_in_the_log(cli, tmp_path):
    rows = tmp_path / "few.csv"
    rows.write_text("a,b\n1,0\n2,1\n3,0\n")
    result = cli("train", "--dataset", str(rows), "--target", "b")
    explained(result, "Error: The dataset")
    assert "✗ validate_data failed" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: The dataset")


def test_training_output_is_zenkubes_own_and_the_library_logs_go_to_a_file(cli):
    result = cli("train", "--model-name", "quiet-model")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "✓ train_model (" in out and "✓ promote_if_better (" in out
    assert "Promoted:     yes" in out
    for noise in ("fastai", "Setting the", "Successfully registered", "INFO", "WARNING"):
        assert noise not in out + result.stderr, noise
    assert len(out.splitlines()) <= 25
    log_file = out.split("Full log:")[1].split()[0]
    logged = open(log_file).read()
    assert "Successfully registered model 'quiet-model'" in logged
    assert "has finished in" in logged
    mlflow_bin = out.split("MLflow UI:")[1].split()[0]
    assert os.access(mlflow_bin, os.X_OK)  # the printed command works without activating


def test_project_state_is_private_and_analytics_are_off(cli):
    import stat

    import yaml

    assert cli("stack", "show").returncode == 0
    home = cli.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    config = yaml.safe_load((home / "zenml" / "config.yaml").read_text())
    assert config["analytics_opt_in"] is False


def test_schedule_on_the_local_stack_gives_the_crontab_line_for_the_same_loop(cli):
    result = cli(
        "schedule",
        "--cron",
        "*/30 * * * *",
        "--input",
        "/data/new.csv",
        "--model-name",
        "quiet-model",
    )
    assert result.returncode == 0, result.stderr
    assert "cannot schedule runs; nothing was scheduled" in result.stdout
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("*/30 * * * * cd ") and "run.py monitor --model-name quiet-model" in line
    assert "--input /data/new.csv" in line


def test_release_schedule_and_check_on_the_local_stack_say_what_watches_there(cli):
    """The cluster's release watcher: the local orchestrator cannot schedule it (a crontab
    line instead), and `release check` says the local front judges its own releases."""
    result = cli("release", "schedule", "--cron", "*/5 * * * *", "--model-name", "quiet-model")
    assert result.returncode == 0, result.stderr
    assert "cannot schedule runs; nothing was scheduled" in result.stdout
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("*/5 * * * * cd ")
    assert "run.py release check --model-name 'quiet-model'" in line
    checked = cli("release", "check", "--model-name", "quiet-model")
    assert checked.returncode != 0 and "Traceback" not in checked.stdout + checked.stderr
    assert "the model's front judges the release of quiet-model" in checked.stderr


def test_a_300_character_model_name_and_a_log_folder_that_is_a_file_are_explained(cli, tmp_path):
    result = cli("history", "--model-name", "m" * 300)
    explained(result, "at most 100 characters", "(300 characters)")
    assert "Unexpected error" not in result.stderr

    blocked = cli_in(tmp_path)
    blocked.home.mkdir(parents=True)
    (blocked.home / "logs").write_text("not a folder")
    result = blocked("history")
    explained(result, f"If {blocked.home / 'logs'} is a file, move it away")
    assert "Unexpected error" not in result.stderr


def test_stack_check_without_a_kubeflow_stack_is_one_paragraph(cli):
    helped = cli("stack", "check", "--help")
    assert helped.returncode == 0 and "SubjectAccessReview" in helped.stdout
    result = cli("stack", "check")  # the local stack is active
    explained(result, "is not a Kubeflow stack", "stack up kubeflow")


def test_a_reader_that_leaves_early_ends_the_command_quietly(cli):
    """`run.py stack show | head -1`: the pipe's reader is gone before the command prints.
    Like any Unix tool the command stops without an error message; a pipe of ours that
    breaks (not the console's) stays an error."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    assert cli("stack", "show").returncode == 0  # prepared, so the next one only prints
    env = cli.env
    proc = subprocess.Popen(
        [sys.executable, "run.py", "stack", "show"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader leaves at once
    err = proc.stderr.read().decode()
    assert proc.wait() == 1
    assert "Unexpected error" not in err and "BrokenPipe" not in err and "Traceback" not in err


def _child_of(log, name: str, deadline: float) -> int:
    """The pid of the worker's child that runs `train --model-name name` (its log says)."""
    import re
    import time

    while time.monotonic() < deadline:
        found = re.search(rf"pid (\d+) runs \['train', '--model-name', '{name}'\]", log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no child for {name} in {log.read_text()}")


def _state(pid: int) -> str:
    from pathlib import Path

    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _suspend_and_terminate_then_kill(cli, log) -> None:
    """Ctrl-Z stops the child too, and continuing resumes it; a command terminated ends by
    SIGTERM as a cold one does; a command killed outright interrupts its child, whose
    output then goes to the worker's log, not to where the command's went."""
    import signal
    import subprocess
    import sys
    import time

    from core.paths import REPO_ROOT

    def train(name: str, out) -> subprocess.Popen:
        # Its own process group under this one, as a shell with job control starts a job:
        # in an orphaned group (a suite run under setsid/nohup) the kernel discards a
        # SIGTSTP whose action is to stop, for a cold command as for a warm one.
        argv = [sys.executable, "run.py", "train", "--model-name", name]
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, env=cli.env, stdout=out, stderr=out, process_group=0
        )

    command = train("suspended", subprocess.DEVNULL)
    child = _child_of(log, "suspended", time.monotonic() + 60)
    command.send_signal(signal.SIGTSTP)
    deadline = time.monotonic() + 10
    while {_state(command.pid), _state(child)} != {"T"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (_state(command.pid), _state(child)) == ("T", "T")
    command.send_signal(signal.SIGCONT)
    while _state(child) == "T" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(child) != "T"
    command.terminate()
    assert command.wait(60) == -signal.SIGTERM  # the shell's 143, as cold
    reader, writer = os.pipe()
    command = train("killed", writer)
    os.close(writer)
    child = _child_of(log, "killed", time.monotonic() + 60)
    printed = os.fdopen(reader, "rb")
    assert printed.readline().startswith(b"zenkube: ")  # the command's own code runs
    command.kill()
    command.wait()
    deadline = time.monotonic() + 60
    while f"pid {child} ended" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"pid {child} ended with status 130" in log.read_text()
    assert "zenkube: interrupted" in log.read_text()
    with printed:
        assert b"interrupted" not in printed.read()


def test_a_pipeline_command_in_the_warm_worker_runs_and_ends_as_it_does_cold(cli):
    """`warm start`: train runs in a fork of the worker (its log says so), prints what a
    cold train prints and ends with the same status; a refused command too."""
    import time

    started = cli("warm", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert "warm worker is ready" in started.stdout
        trained = cli("train", "--model-name", "warm-model")
        assert trained.returncode == 0, trained.stderr
        assert "✓ train_model (" in trained.stdout and "Promoted:     yes" in trained.stdout
        assert "INFO" not in trained.stdout + trained.stderr
        refused = cli("train", "--dataset", "missing.csv", "--target", "y")
        assert refused.returncode == 2
        assert refused.stderr.startswith("Error: Data file not found: missing.csv")
        log = cli.home / "logs" / "warm.log"
        ran = [line for line in log.read_text().splitlines() if " runs " in line]
        assert len(ran) == 2 and "['train', '--model-name', 'warm-model']" in ran[0]
        deadline = time.monotonic() + 10
        while "ended with status 2" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "ended with status 0" in log.read_text() and "ended with status 2" in log.read_text()
        _suspend_and_terminate_then_kill(cli, log)
    finally:
        stopped = cli("warm", "stop")
    assert "stopped the warm worker" in stopped.stdout
    assert not (cli.home / "warm.sock").exists() and not (cli.home / "warm.json").exists()
