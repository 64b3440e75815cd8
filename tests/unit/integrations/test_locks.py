"""One command per model: a second process waits for the lock or is refused with a sentence;
an uninterrupted block finishes before a Ctrl-C takes effect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from core.champion import locks
from tests.conftest import REPO_ROOT

HOLD = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {str(REPO_ROOT)!r})
    from core.champion import locks
    with locks.model_lock("m", "rollback", echo=None):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
""")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    return tmp_path


def hold(seconds: float) -> subprocess.Popen:
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert other.stdout.readline().strip() == "held"
    return other


def test_a_second_command_is_refused_with_who_holds_the_model(home):
    other = hold(30)
    try:
        said = []
        with pytest.raises(locks.ModelBusy) as refused:
            with locks.model_lock("m", "deploy", said.append, timeout=0.5):
                pytest.fail("ran while another command held the model")
        assert f"`rollback` (pid {other.pid})" in str(refused.value)
        assert "this deploy did nothing" in str(refused.value)
        assert said and "waits for it to finish" in said[0]
    finally:
        other.kill()
        other.wait()


def test_a_second_command_waits_and_runs_when_the_first_ends(home):
    other = hold(1.5)
    started = time.monotonic()
    with locks.model_lock("m", "deploy", echo=None, timeout=60):
        assert time.monotonic() - started >= 1.0
        assert other.wait(timeout=10) == 0


def test_the_lock_is_reentrant_in_a_process_and_dropped_when_a_holder_dies(home):
    with locks.model_lock("m", "rollback", echo=None):
        with locks.model_lock("m", "deploy", echo=None, timeout=0):  # the step inside
            pass
    other = hold(60)
    other.kill()  # SIGKILL: the kernel drops its flock
    other.wait()
    with locks.model_lock("m", "deploy", echo=None, timeout=0):
        pass


def test_a_ctrl_c_inside_an_uninterrupted_block_waits_for_its_end():
    before = signal.getsignal(signal.SIGINT)  # pytest-xdist workers do not use Python's default
    done = []
    with pytest.raises(KeyboardInterrupt):
        with locks.uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append("all of it")
    assert done == ["all of it"]
    assert signal.getsignal(signal.SIGINT) == before
