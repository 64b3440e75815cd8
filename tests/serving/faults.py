"""kill -9 of each serving process kind under load (issue #34), for the fault test and
benchmarks/bench_faults.py: one served model on V2 behind its front and keeper, as two
replicas (a primary and a warm standby: integrations/seldon_local/replicas.py), a canary
release at 50% of a second version (its own model server, two replicas too) and the
release watcher; four clients post one row each request while one process is killed at a time.

No ZenML pipeline: the servers are started as `SeldonLocalService.start_on` starts them
(a model copy, `server.launch.json`, `server.json` in a folder under the state folder),
so the front supervises them exactly as it supervises a deployment's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from core.paths import REPO_ROOT
from integrations.mlflow.registry import PICKLE_ENV
from integrations.seldon_local import process, replicas
from integrations.seldon_local.environments import runtime_python
from integrations.seldon_local.front import ModelFront, served_state
from integrations.seldon_local.router.supervise import START_TIMEOUT
from tests.serving import release_models
from tests.serving.load import ClientThreads

MODEL = "faults"
PROTOCOL = "v2"
CLIENTS = 4
# "model server": the champion's primary replica; "standby": its warm standby
KINDS = ("front", "model server", "standby", "candidate", "watcher", "keeper")
REPLICAS = 2  # the champion's and the candidate's, as a user's deploy runs them
# the release never decides by itself here: it stays running through every kill
UNDECIDED = {"min_requests": 10**9, "budget_seconds": 24 * 3600}


def start_server(folder: Path, model_dir: Path, protocol: str = PROTOCOL, count: int = 1) -> int:
    """A model server as a deployment's, with `count` replicas (replicas.py): its model
    copy, launch specs and record in `folder`; returns its port once all are healthy."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, folder / "model")
    proto, port = process.get_protocol(protocol), process.free_port()
    command = proto.command(runtime_python(protocol), folder / "model", "classifier", port, 1)
    env = {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST}

    def prove(pid: int, on: int, log: Path) -> None:
        process.wait_healthy(pid, proto.url(on, "classifier", proto.health_path), log, 180)

    pid = process.spawn(command, folder / "server.log", env)
    prove(pid, port, folder / "server.log")
    standbys = replicas.start_standbys(
        folder, command, env, count - 1, prove, process.free_port, process.spawn,
        process.stop_group,
    )  # fmt: skip
    record = {"pid": pid, "port": port, "protocol": protocol}
    (folder / "server.json").write_text(json.dumps({**record, "standbys": standbys}))
    return port


def server_record(folder: Path) -> dict:
    try:
        return json.loads((folder / "server.json").read_text())
    except (OSError, ValueError):
        return {}


def server_pid(folder: Path, index: int = 0) -> int | None:
    """The pid of replica `index` (0: the primary) of the server in `folder`."""
    found = [r.pid for r in replicas.of(server_record(folder)) if r.index == index]
    return found[0] if found else None


def spawn_watcher(front: ModelFront) -> int:
    """`release watch` as `release start` spawns it (steps/deployment/release.py)."""
    command = [
        sys.executable, str(REPO_ROOT / "run.py"), "release", "watch",
        "--model-name", MODEL, "--state-dir", str(front.state_dir),
    ]  # fmt: skip
    with open(front.dir / "release-watch.log", "ab") as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT), start_new_session=True,
            env={**os.environ, "ZENKUBE_HOME": str(front.state_dir.parent / "home")},
        )  # fmt: skip
    (front.dir / "release-watch.pid").write_text(str(child.pid))
    return child.pid


@dataclass
class Served:
    front: ModelFront
    champion_dir: Path
    candidate_dir: Path
    champion_port: int
    candidate_port: int
    url: str
    body: dict

    def pid_of(self, kind: str) -> int | None:
        """The pid a kill of `kind` targets now."""
        if kind == "front":
            return self.front.pid
        if kind == "keeper":
            return self.front.record().get("keeper")
        if kind == "model server":
            return server_pid(self.champion_dir)
        if kind == "standby":
            return server_pid(self.champion_dir, 1)
        if kind == "candidate":
            return server_pid(self.candidate_dir)
        try:
            return int((self.front.dir / "release-watch.pid").read_text())
        except (OSError, ValueError):
            return None

    def back(self, kind: str, old: int) -> bool:
        """Whether a new process of `kind` runs in place of `old`, doing its job."""
        pid = self.pid_of(kind)
        if not pid or pid == old or not process.is_alive(pid):
            return False
        if kind == "front":
            return (self.front.status() or {}).get("pid") == pid
        if kind in ("model server", "standby", "candidate"):
            folder = self.candidate_dir if kind == "candidate" else self.champion_dir
            index = 1 if kind == "standby" else 0
            (port,) = [r.port for r in replicas.of(server_record(folder)) if r.index == index]
            proto = process.get_protocol(PROTOCOL)
            try:
                url = proto.url(port, "classifier", proto.health_path)
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False
        return True

    def state(self) -> dict:
        """What is served: protocol and version (the record), the release (the front)."""
        record = served_state(self.front.state_dir, MODEL)
        release = self.front.release_status() or {}
        return {
            "protocol": record.get("protocol"),
            "version": record.get("version"),
            "port": self.front.port,
            "release": (
                release.get("state"),
                release.get("mode"),
                release.get("percent"),
                (release.get("candidate") or {}).get("version"),
            ),
        }


def first_row(protocol: str, port: int) -> tuple[str, dict]:
    """The prediction URL on the front's `port` and a body of one row."""
    X, _ = release_models.data()
    proto = process.get_protocol(protocol)
    body = proto.request_body(release_models.COLUMNS, [X.iloc[0].tolist()])
    return proto.url(port, "classifier", proto.predict_path), body


def stop_replicas(*folders: Path) -> None:
    """Every replica of the servers in `folders` (their front stopped first: it restarts
    no server after that)."""
    for folder in folders:
        replicas.stop_all(replicas.pids(server_record(folder)), process.stop_group, 5)


@contextmanager
def served_replicas(root: Path, protocol: str):
    """v1 served on `protocol` as REPLICAS replicas behind its front, nothing else:
    (front, the server's folder, prediction URL, a one-row body)."""
    folders = release_models.models(root / "models", ("champion",))
    state = root / "state"
    front = ModelFront(state, MODEL)
    try:
        port = start_server(state / "champion", folders["champion"], protocol, REPLICAS)
        columns = json.dumps(release_models.COLUMNS)
        served = {"model": MODEL, "version": "1", "protocol": protocol, "columns": columns}
        front.start(process.free_port(), port, served=served)
        yield (front, state / "champion", *first_row(protocol, front.port))
    finally:
        front.stop()
        stop_replicas(state / "champion")


@contextmanager
def served_release(root: Path):
    """v1 served on V2 behind its front, v2 a canary at 50% beside it, a watcher."""
    folders = release_models.models(root / "models", ("champion", "good"))
    state = root / "state"
    champion_dir, candidate_dir = state / "champion", state / "candidate"
    front = ModelFront(state, MODEL)
    try:
        champion_port = start_server(champion_dir, folders["champion"], count=REPLICAS)
        candidate_port = start_server(candidate_dir, folders["good"], count=REPLICAS)
        columns = json.dumps(release_models.COLUMNS)
        served = {"model": MODEL, "version": "1", "protocol": PROTOCOL, "columns": columns}
        front.start(process.free_port(), champion_port, served=served)
        front.release_start(
            candidate_port, "canary", 50, {"version": "2", "columns": columns},
            str(candidate_dir), UNDECIDED,
        )  # fmt: skip
        spawn_watcher(front)
        url, body = first_row(PROTOCOL, front.port)
        yield Served(front, champion_dir, candidate_dir, champion_port, candidate_port, url, body)
    finally:
        pid_file = front.dir / "release-watch.pid"
        front.stop()
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        stop_replicas(champion_dir, candidate_dir)


class Load(ClientThreads):
    """CLIENTS threads posting one row per request: when each failed or succeeded."""

    def __init__(self, url: str, body: dict):
        self.url, self.body = url, body
        self.failures: list[float] = []
        self.reasons: list[str] = []  # what each failed request got
        self.answered = 0
        super().__init__(CLIENTS, join_timeout=15)

    def run(self, client: int) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                answer = session.post(self.url, json=self.body, timeout=10)
                ok, reason = answer.status_code == 200, f"{answer.status_code} {answer.text[:200]}"
            except requests.RequestException as exc:
                ok, reason = False, repr(exc)[:200]
                session = requests.Session()
            with self.lock:
                if ok:
                    self.answered += 1
                else:
                    self.failures.append(time.monotonic())
                    self.reasons.append(reason)
            if not ok:
                time.sleep(0.02)


def answers(url: str, body: dict) -> bool:
    try:
        return requests.post(url, json=body, timeout=5).status_code == 200
    except requests.RequestException:
        return False


# a model server's restart is the front's failure only once the front gave up on it (it
# allows START_TIMEOUT): MLServer's start and model load took 22 s on a quiet machine and
# over 60 s on a loaded CI machine. How fast it is, is benchmarks/bench_faults.py's.
RECOVER_SECONDS = START_TIMEOUT + 30


def kill_and_recover(
    served: Served, kind: str, load: Load, timeout: float = RECOVER_SECONDS
) -> dict:
    """kill -9 the process of `kind`; returns the seconds until the endpoint answered
    again (`outage`: the last failed request after the kill; 0 when none failed), until
    a new process of the kind did its job (`replaced`), the failed requests, and the
    served state before and after."""
    before = served.state()
    old = served.pid_of(kind)
    assert old and process.is_alive(old), f"no {kind} process to kill"
    with load.lock:
        failed_before = len(load.failures)
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    replaced = None
    while time.monotonic() - killed < timeout:
        if replaced is None and served.back(kind, old):
            replaced = time.monotonic() - killed
        if replaced is not None and answers(served.url, served.body):
            break
        time.sleep(0.05)
    time.sleep(1.0)  # requests that were failing when it came back are counted too
    with load.lock:
        failures = load.failures[failed_before:]
    return {
        "kind": kind,
        "outage": max(failures) - killed if failures else 0.0,
        "replaced": replaced,
        "failed": len(failures),
        "before": before,
        "after": served.state(),
    }
