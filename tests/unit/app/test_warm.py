"""The warm worker's rules that need no worker: which commands go to it, when its imports
fit a command, that a command in it imports this repository's code afresh and ends as a
cold one does, and that only the worker itself is ever stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types

import pytest

from app import warm, warm_worker
from core.paths import REPO_ROOT


@pytest.mark.parametrize(
    ("argv", "forwarded"),
    [
        (["run.py"], True),  # the whole loop
        (["run.py", "train", "--model-name", "m"], True),
        (["run.py", "--verbose", "deploy"], True),
        (["run.py", "monitor", "--input", "rows.csv"], True),
        (["run.py", "monitor", "history"], False),  # read-only: no ZenML at all
        (["run.py", "train", "--help"], False),
        (["run.py", "serve", "status"], False),
        (["run.py", "history"], False),
        (["run.py", "warm", "start"], False),
    ],
)
def test_only_pipeline_commands_go_to_the_worker(monkeypatch, argv, forwarded):
    monkeypatch.delenv(warm.CHILD_ENV, raising=False)
    monkeypatch.delenv(warm.SWITCH_ENV, raising=False)
    assert warm.wanted(argv) is forwarded


@pytest.mark.parametrize("variable", [warm.CHILD_ENV, warm.SWITCH_ENV])
def test_a_command_in_a_child_or_told_to_run_cold_is_not_forwarded(monkeypatch, variable):
    monkeypatch.setenv(variable, "1" if variable == warm.CHILD_ENV else "0")
    assert not warm.wanted(["run.py", "train"])


def test_the_key_follows_what_imports_read_not_the_shell():
    env = {"ZENML_LOGGING_VERBOSITY": "WARN", "PWD": "/a", "_": "/usr/bin/python", "SHLVL": "1"}
    same = {**env, "PWD": "/b", "_": "./run.py", "SHLVL": "3", warm.SWITCH_ENV: "1"}
    assert warm.key(env) == warm.key(same)
    assert warm.key(env) != warm.key({**env, "ZENML_LOGGING_VERBOSITY": "INFO"})
    assert warm.key(env) != warm.key({**env, "MLFLOW_TRACKING_URI": "http://x"})


def test_the_key_leaves_out_make_and_other_terminals_variables():
    env = {"ZENML_LOGGING_VERBOSITY": "WARN", "HOME": "/home/u"}
    shell = {
        **env,
        **{"MAKEFLAGS": "-j2", "MAKELEVEL": "1", "MFLAGS": "-s", "TERM_SESSION_ID": "w0"},
        **{"SSH_CONNECTION": "1.2.3.4 22", "SSH_TTY": "/dev/pts/3", "TMUX": "/tmp/t,1,0"},
        **{"TMUX_PANE": "%3", "WINDOWID": "4", "STY": "1.pts", warm.IDLE_ENV: "60"},
    }
    assert warm.key(env) == warm.key(shell)


def test_the_key_follows_the_umask_and_resource_limits():
    import resource

    env = {"HOME": "/home/u"}
    before = warm.key(env)
    mask = os.umask(0o077 if os.umask(0o022) != 0o077 else 0o022)
    try:
        assert warm.key(env) != before
    finally:
        os.umask(mask)
    assert warm.key(env) == before
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
    try:
        assert warm.key(env) != before
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_status_names_what_differs_never_values(monkeypatch, tmp_path):
    env = {"HOME": "/home/u", "MLFLOW_TRACKING_URI": "file:/secret-a", "OLD": "1"}
    state = warm.record(os.getpid(), env)
    assert "secret" not in str(state)
    assert warm.differences(state, env) == []
    mine = {"HOME": "/home/u", "MLFLOW_TRACKING_URI": "file:/secret-b", "NEW": "1"}
    assert warm.differences(state, mine) == ["$MLFLOW_TRACKING_URI", "$NEW", "$OLD"]
    assert warm.differences(state, {**env, "SSH_TTY": "/dev/pts/9"}) == []
    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    monkeypatch.delenv(warm.SWITCH_ENV, raising=False)
    worker = _fake_worker()
    try:
        state = warm.record(worker.pid)
        state["env"]["ZK_ONLY_THE_WORKERS"] = "x"
        state["key"] = "started with ZK_ONLY_THE_WORKERS set"
        warm.write_state(state)
        said = []
        assert warm.status(said.append) is False
        assert f"running (pid {worker.pid})" in said[0] and "$ZK_ONLY_THE_WORKERS" in said[1]
    finally:
        worker.kill()
        worker.wait()
    assert (tmp_path / "warm.json").stat().st_mode & 0o077 == 0  # digests: for the user only


def test_without_a_worker_the_command_runs_cold(monkeypatch, tmp_path):
    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    assert warm.running() is None and warm.forward(["run.py", "train"]) is None
    (tmp_path / "warm.json").write_text('{"pid": 999999999, "key": "x"}')  # a dead worker
    assert warm.running() is None and warm.forward(["run.py", "train"]) is None


def test_a_child_forgets_this_repositorys_modules_and_keeps_the_libraries(monkeypatch):
    ours = types.ModuleType("zk_ours")
    ours.__file__ = str(REPO_ROOT / "steps" / "zk_ours.py")
    library = types.ModuleType("zk_library")
    library.__file__ = str(REPO_ROOT / ".venv" / "lib" / "zk_library.py")
    monkeypatch.setitem(sys.modules, "zk_ours", ours)
    monkeypatch.setitem(sys.modules, "zk_library", library)
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the real table stays as it is
    warm_worker._forget_project_modules()
    assert "zk_ours" not in sys.modules and "app.warm" not in sys.modules
    assert sys.modules["zk_library"] is library and "pytest" in sys.modules


def test_a_forwarded_command_imports_no_library_before_it_is_forwarded():
    """What a pipeline command imports before it goes to the worker (run.py's own imports
    are checked by the read-only commands' tests): a heavy import here would come back
    into every warm command's time."""
    import subprocess

    probe = (
        "import sys; import app.session, app.warm, app.warm_cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'zenml', 'mlflow', 'sklearn', 'pandas', 'numpy', 'sqlalchemy'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _fake_worker(ignore_term: bool = False) -> subprocess.Popen:
    """A process whose command line is the worker's (`-m app.warm_worker`), doing nothing."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print(1, flush=True)\ntime.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "-m", "app.warm_worker"], stdout=subprocess.PIPE
    )
    process.stdout.readline()  # its handlers are set
    return process


def test_a_stale_record_never_signals_the_process_that_reuses_its_pid(monkeypatch, tmp_path):
    """After a kill -9 or a reboot, warm.json may name a pid another process has now."""
    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    other = subprocess.Popen(["sleep", "60"])
    try:
        record = {**warm.record(other.pid), "started": warm._started(other.pid)}
        warm.write_state(record)  # even its start time matches: it is not the worker
        assert warm.running() is None and warm.forward(["run.py", "train"]) is None
        said = []
        assert warm.stop(said.append) is False
        assert said == [
            f"zenkube: no warm worker is running (removed a stale record of pid {other.pid})."
        ]
        assert other.poll() is None and not (tmp_path / "warm.json").exists()
        warm.write_state(warm.record(os.getpid()))  # a worker's command line, not its start
        worker = _fake_worker()
        warm.write_state({**warm.record(worker.pid), "started": 1})
        assert warm.running() is None and warm.stop(said.append) is False
        assert worker.poll() is None
        worker.kill()
        worker.wait()
    finally:
        other.kill()
        other.wait()


def test_stop_stops_the_worker_and_never_says_stopped_when_it_did_not(monkeypatch, tmp_path):
    from core.errors import ZenkubeError

    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    monkeypatch.setattr(warm, "STOP_TIMEOUT", 0.5)
    worker = _fake_worker()
    warm.write_state(warm.record(worker.pid))
    said = []
    assert warm.running()["pid"] == worker.pid and warm.stop(said.append) is True
    assert worker.wait(5) == -signal.SIGTERM and said == [
        f"zenkube: stopped the warm worker (pid {worker.pid})."
    ]
    stubborn = _fake_worker(ignore_term=True)
    warm.write_state(warm.record(stubborn.pid))
    try:
        with pytest.raises(ZenkubeError, match=f"did not stop within 0 s.*kill {stubborn.pid}"):
            warm.stop(said.append)
        assert len(said) == 1 and stubborn.poll() is None
    finally:
        stubborn.kill()
        stubborn.wait()


def test_make_clean_stops_the_worker_before_removing_its_home():
    dry = subprocess.run(
        ["make", "-n", "clean"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "run.py warm stop" in dry and "rm -rf .zenkube" in dry
    assert dry.index("run.py warm stop") < dry.index("rm -rf .zenkube")


def test_a_child_waits_for_the_commands_threads_as_an_interpreters_exit_does(tmp_path):
    """A non-daemon thread (and concurrent.futures' queued work) finishes before the child
    ends, and before the atexit functions run, as in a cold command."""
    done = tmp_path / "done"
    code = f"""
import atexit, os, threading, time
from concurrent.futures import ThreadPoolExecutor
from app.warm_worker import exit_as_python_does
order = []
atexit.register(lambda: order.append("atexit"))
def slow(name):
    time.sleep(0.3)
    order.append(name)
threading.Thread(target=slow, args=("thread",)).start()
pool = ThreadPoolExecutor(1)
for name in ("job1", "job2"):
    pool.submit(slow, name)
exit_as_python_does()
open({str(done)!r}, "w").write(" ".join(order))
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=30)
    assert sorted(done.read_text().split()[:3]) == ["job1", "job2", "thread"]
    assert done.read_text().split()[3:] == ["atexit"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_command_ends_by_the_signal_that_ended_its_child(signum):
    """The worker reports a child a signal ended as that signal's negative; the command
    then ends by it too (its shell sees 128+N, as for a cold command)."""
    child = os.fork()
    if child == 0:
        signal.signal(signum, signal.SIG_DFL)  # this process may run under nohup
        os.kill(os.getpid(), signum)
        os._exit(3)
    _, status = os.waitpid(child, 0)
    import socket

    mine, theirs = socket.socketpair()
    warm_worker.report_end(os.dup(theirs.fileno()), status)
    theirs.close()
    reported = warm._read_int(mine)
    assert reported == -signum
    code = f"import sys; from app.warm import end_as; sys.exit(end_as({reported}))"
    ended = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False)
    assert ended.returncode == -signum
    normal = subprocess.run(
        [sys.executable, "-c", "import sys; from app.warm import end_as; sys.exit(end_as(2))"],
        cwd=REPO_ROOT,
        check=False,
    )
    assert normal.returncode == 2


def test_the_idle_time_counts_from_the_last_commands_end():
    assert not warm_worker.idle(now=5000.0, ended=0.0, running=1, limit=1800)  # one runs
    assert not warm_worker.idle(now=5000.0, ended=4000.0, running=0, limit=1800)
    assert warm_worker.idle(now=5000.0, ended=3000.0, running=0, limit=1800)


def test_a_command_under_nohup_relays_no_sighup_to_its_child():
    """`nohup run.py train &`: a cold command ignores SIGHUP (the terminal closing), so a
    warm one must not relay it to its child; what it does not ignore it relays."""
    code = (
        "import signal; from app.warm import relayed\n"
        "print(sorted(s.name for s in relayed()))\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print(sorted(s.name for s in relayed()))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    before, after = ran.stdout.splitlines()
    assert "SIGTERM" in after and "SIGTSTP" in after and "SIGHUP" not in after
    assert "SIGINT" not in after
    assert set(eval(before)) - set(eval(after)) <= {"SIGHUP", "SIGINT"}


def test_a_warm_childs_exit_code_is_a_process_exit_status_not_a_signal():
    """sys.exit(-1) in a command ends a cold process with 255; the warm child reports the
    same status, which end_as must not take for 'killed by signal 1'."""
    from app.warm_worker import _exit_status

    assert _exit_status(-1) == 255 and _exit_status(256) == 0 and _exit_status(3) == 3
    assert _exit_status(None) == 0
