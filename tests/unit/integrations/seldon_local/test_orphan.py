"""A model server's orphan watch (runtime/orphan.py) with real processes standing in for
the front and its keeper (a command line naming the front's record, as theirs do) and a
clock the test moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrations.seldon_local.runtime import orphan

GRACE = 60.0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stand_in(record, cwd=None) -> subprocess.Popen:
    """A process whose command line names `record` as a front's or keeper's does."""
    code = "import time; time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code, "--record", str(record)], cwd=cwd)
    # Popen returns once exec began; the new command line is readable a moment later
    deadline = time.monotonic() + 10
    while b"--record" not in Path(f"/proc/{child.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.01)
    return child


def end(child: subprocess.Popen) -> None:
    child.kill()
    child.wait()


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        if child.poll() is None:
            end(child)


def write_record(record, pid=None, keeper=None) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"pid": pid, "keeper": keeper, "port": 1}))


def test_identity_names_one_process_not_its_pid(procs):
    me = orphan.identity(os.getpid())
    assert me and orphan.same_process(me)
    pid, ticks = me.split(":")
    assert not orphan.same_process(f"{pid}:{int(ticks) + 1}")  # a reused pid: another start
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = orphan.identity(child.pid) or f"{child.pid}:0"
    child.wait()
    assert not orphan.same_process(gone)
    assert not orphan.same_process("") and not orphan.same_process("x:1")


def test_only_a_process_of_this_record_counts_as_its_front_or_keeper(tmp_path, procs):
    record, other = tmp_path / "fronts/m/router.json", tmp_path / "fronts/n/router.json"
    write_record(record)
    write_record(other)
    procs.append(mine := stand_in(record))
    procs.append(theirs := stand_in(other))
    procs.append(relative := stand_in("m/router.json", cwd=tmp_path / "fronts"))
    assert orphan.runs_for(mine.pid, str(record))
    assert orphan.runs_for(relative.pid, str(record))  # read from its working folder
    assert not orphan.runs_for(theirs.pid, str(record))  # a pid reused by another process
    assert not orphan.runs_for(os.getpid(), str(record))
    assert not orphan.runs_for(None, str(record)) and not orphan.runs_for("1", str(record))
    end(mine)
    assert not orphan.runs_for(mine.pid, str(record))
    write_record(record, pid=mine.pid, keeper=theirs.pid)
    assert not orphan.front_runs(str(record))
    write_record(record, pid=mine.pid, keeper=relative.pid)  # the keeper alone is enough
    assert orphan.front_runs(str(record))
    record.write_text("{not json")
    assert not orphan.front_runs(str(record))


def test_a_server_exits_only_after_front_and_keeper_were_both_gone_for_the_grace(tmp_path, procs):
    folder, record = tmp_path / "uuid", tmp_path / "fronts/m/router.json"
    folder.mkdir()
    write_record(record)
    clock = Clock()
    watch = orphan.Watch(str(folder), str(record), orphan.identity(os.getpid()), GRACE, clock)
    # starting: no front yet, its starter (this process) looks after it, however long
    clock.now += 10 * GRACE
    assert watch.reason() is None and not watch.adopted
    procs.append(front := stand_in(record))
    procs.append(keeper := stand_in(record))
    write_record(record, pid=front.pid, keeper=keeper.pid)
    assert watch.reason() is None and watch.adopted
    # the front killed, its keeper restarts it: the keeper alone keeps the server
    end(front)
    clock.now += 10 * GRACE
    assert watch.reason() is None
    # both gone: the starter no longer counts once the front was seen
    end(keeper)
    assert watch.reason() is None
    clock.now += GRACE - 1
    assert watch.reason() is None
    # a front back within the grace (a deploy starting it again) keeps it, and resets it
    procs.append(again := stand_in(record))
    write_record(record, pid=again.pid)
    assert watch.reason() is None
    end(again)
    assert watch.reason() is None
    clock.now += GRACE - 1
    assert watch.reason() is None
    clock.now += 1
    why = watch.reason()
    assert why and "front nor the front's keeper" in why and f"{GRACE:g} s" in why


def test_a_server_whose_starter_died_before_any_front_exits_after_the_grace(tmp_path):
    folder, record = tmp_path / "uuid", tmp_path / "fronts/m/router.json"
    folder.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    starter = orphan.identity(child.pid)
    child.wait()
    clock = Clock()
    watch = orphan.Watch(str(folder), str(record), starter or "", GRACE, clock)
    assert watch.reason() is None  # no record at all: the grace counts from here
    clock.now += GRACE
    assert "front nor its starter" in (watch.reason() or "")


def test_a_server_whose_folder_was_removed_exits_at_once(tmp_path, procs):
    folder, record = tmp_path / "uuid", tmp_path / "fronts/m/router.json"
    folder.mkdir()
    procs.append(front := stand_in(record))
    write_record(record, pid=front.pid)
    watch = orphan.Watch(str(folder), str(record), "", GRACE, Clock())
    assert watch.reason() is None
    folder.rmdir()
    assert watch.reason() == f"its folder {folder} was removed"  # its front still runs


def test_the_environment_a_server_starts_with(tmp_path, monkeypatch):
    env = orphan.guard_env(tmp_path / "uuid", tmp_path / "fronts/m/router.json")
    assert env[orphan.FOLDER_ENV] == str(tmp_path / "uuid")
    assert orphan.same_process(env[orphan.STARTER_ENV])
    assert env[orphan.STARTER_ENV].startswith(f"{os.getpid()}:")
    for raw, grace in (("2.5", 2.5), ("", 60.0), ("soon", 60.0), ("-1", 60.0)):
        monkeypatch.setenv(orphan.GRACE_ENV, raw)
        assert orphan.grace_from_env() == grace
    for name in (orphan.FOLDER_ENV, orphan.FRONT_ENV):
        monkeypatch.delenv(name, raising=False)
    assert orphan.watch_in_background() is None  # started by hand: not watched
