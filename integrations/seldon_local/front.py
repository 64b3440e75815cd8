"""Start, switch and stop the front (the router package) of one served model.

One front per registered model name, on the stable port clients call; it outlives the
model servers behind it. Its keeper (keeper.py: a parent that does nothing else) holds
the port and restarts the front within a second when it dies; the front restarts its
keeper. Their record (`fronts/<model>/router.json`) is the served state: what is served
(model, version, protocol, columns), the port and the backend port it forwards to, the
server's folder, where traffic goes, the release, and the processes (pid, keeper, group).
It outlives every process: a restarted front serves from it, and commands read it
(`served_state`, standard library only). It is controlled over a Unix socket in that folder
(`control.sock`; the folder is 0700 and the socket 0600), never over the serving port:
only the user who runs zenkube can switch where it forwards or read its pids and ports.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.paths import REPO_ROOT
from integrations.seldon_local import process
from integrations.seldon_local.pids import command_line

ROUTER = Path(__file__).resolve().parent / "router"  # a folder: its __main__.py runs
KEEPER = Path(__file__).resolve().parent / "keeper.py"


def served_state(state_dir: str | Path, model_name: str) -> dict:
    """The served state of `model_name`'s endpoint (router.json; {} when it was never
    served): model, version, protocol, port, backend, server_dir, columns, traffic_dir,
    release (state, mode, percent, champion, candidate, ...), front_restarts. It is what
    the front serves, or served when it died (its keeper serves it again)."""
    return ModelFront(state_dir, model_name).record()


class FrontError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the front's control socket (the standard library, no extra package)."""

    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        folder = os.open(self.path.parent, os.O_PATH | os.O_DIRECTORY)
        try:
            sock.connect(process.unix_address(self.path, folder))
        except OSError:
            sock.close()
            raise
        finally:
            os.close(folder)
        self.sock = sock


def control_request(
    path: Path, method: str, url: str, body: dict | None = None, timeout: float = 5
) -> tuple[int, dict]:
    """(status, JSON answer) of one request to a front's control socket; OSError when
    nothing answers there."""
    conn = _UnixConnection(path, timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, url, body=payload, headers=headers)
        answer = conn.getresponse()
        text = answer.read()
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, {"error": text[:200].decode(errors="replace")}
    except http.client.HTTPException as exc:
        raise OSError(f"the front's control socket answered badly: {exc}") from exc
    finally:
        conn.close()


class ModelFront:
    def __init__(self, state_dir: str | Path, model_name: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
        self.dir = Path(state_dir) / "fronts" / safe
        self.record_file = self.dir / "router.json"
        self.log_file = self.dir / "router.log"
        self.control_socket = self.dir / "control.sock"
        self.state_dir = Path(state_dir)
        self.model_name = model_name

    def record(self) -> dict:
        try:
            data = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def port(self) -> int | None:
        return self.record().get("port")

    @property
    def pid(self) -> int | None:
        return self.record().get("pid")

    def keeper_alive(self) -> bool:
        """Whether the front's keeper runs (it restarts the front when it died)."""
        return process.is_alive(self.record().get("keeper"))

    def status(self) -> dict | None:
        """What the running front says about itself (pid, port, backend, requests in
        flight, restarts of the server behind it), or None when it does not answer."""
        if not (self.port and process.is_alive(self.pid)):
            return None
        try:
            code, answer = control_request(self.control_socket, "GET", "/router", timeout=2)
        except OSError:
            return None
        return answer if code == 200 else None

    def restarts_note(self) -> str | None:
        """How often the front restarted a dead server behind it, and its keeper the
        front, for `serve status`."""
        status = self.status() or {}
        notes = []
        if status.get("restart_note"):
            notes.append(status["restart_note"])
        elif status.get("restarts"):
            last = _clock(status["last_restart"])
            notes.append(f"{status['restarts']} (the server died; last restarted {last})")
        if status.get("front_restarts"):
            last = _clock(status["last_front_restart"])
            notes.append(
                f"front {status['front_restarts']} (it died; its keeper restarted it, last "
                f"{last}; the metrics' counters start again at each)"
            )
        return "; ".join(notes) or None

    def replicas_note(self) -> str | None:
        """How many of the served version's model-server replicas are ready, for `serve
        status` (None: the front does not answer)."""
        replicas = (self.status() or {}).get("replicas")
        if not replicas:
            return None
        ready, total = replicas.get("ready", 0), replicas.get("total", 0)
        note = f"{ready}/{total} ready"
        if ready < total:
            note += " (the front restarts the missing; the ready ones answer meanwhile)"
        return note

    def server_dir(self, backend: int) -> str:
        """The folder of the server listening on `backend` (its `server.json` says the
        port): the front watches that server and restarts it if it dies."""
        for record in self.state_dir.glob("*/server.json"):
            try:
                if json.loads(record.read_text()).get("port") == backend:
                    return str(record.parent)
            except (OSError, ValueError):
                continue
        return ""

    @property
    def metrics_url(self) -> str | None:
        """Prometheus metrics of this model (requests, latency, rows), served by the front."""
        return f"http://{process.HOST}:{self.port}/metrics" if self.port else None

    def start(
        self,
        port: int,
        backend: int,
        served: dict[str, str] | None = None,
        traffic: dict[str, str] | None = None,
        timeout: float = 20.0,
    ) -> None:
        """Start the front on `port`, forwarding to `backend`. `served` says what is served
        (model, version, protocol, columns: its metrics' labels); `traffic` where served
        traffic is recorded (traffic-dir, traffic-max-mb; none: not recorded)."""
        self.stop()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)  # the control socket's folder: its owner only
        command = [
            sys.executable, str(KEEPER), "--port", str(port), "--record", str(self.record_file),
            "--", sys.executable, str(ROUTER),
            "--port", str(port), "--backend", str(backend), "--record", str(self.record_file),
            "--control", str(self.control_socket), "--log", str(self.log_file),
            "--server-dir", self.server_dir(backend),
        ]  # fmt: skip
        for key, value in {**(served or {}), **(traffic or {})}.items():
            command += [f"--{key}", str(value)]
        keeper = process.spawn(command, self.log_file, {}, record_launch=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status and status.get("keeper") == keeper:
                return
            if not process.is_alive(keeper):
                break
            time.sleep(0.1)
        process.stop_group(keeper)
        raise FrontError(
            f"The model's front on port {port} did not start. Last log lines "
            f"({self.log_file}):\n{process.log_tail(self.log_file)}"
        )

    def switch(
        self,
        backend: int,
        drain: list[int],
        served: dict[str, str] | None = None,
        timeout: float = 60.0,
        traffic: dict[str, str] | None = None,
    ) -> None:
        """Send new requests to `backend`; return once the `drain` ports have none in flight.
        `traffic` (as for `start`; {}: off) changes where served traffic is recorded."""
        wanted = {"port": backend, **(served or {}), "server_dir": self.server_dir(backend)}
        if traffic is not None:
            wanted["traffic_dir"] = traffic.get("traffic-dir", "")
            wanted["traffic_max_mb"] = traffic.get("traffic-max-mb", 512)
        try:
            code, answer = control_request(self.control_socket, "PUT", "/backend", wanted)
        except OSError as exc:
            raise FrontError(f"The model's front did not answer the switch: {exc}") from exc
        if code != 200 or answer.get("backend") != backend:
            raise FrontError(f"The model's front refused the switch: {str(answer)[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inflight = (self.status() or {}).get("inflight", {})
            if not any(inflight.get(str(p)) for p in drain):
                return
            time.sleep(0.05)

    # -- a release: a candidate server beside the champion (router/control.py) --------
    @property
    def release_file(self) -> Path:
        return self.dir / "release.json"

    def release_start(
        self,
        port: int,
        mode: str,
        percent: float,
        served: dict[str, str],
        server_dir: str,
        thresholds: dict | None = None,
    ) -> dict:
        """Start a release: the candidate server on `port` answers `percent` % of the
        predictions (mode canary) or a copy of each (mode shadow). `served` says what it
        serves (version, columns: as for `switch`; task: classification or regression); `thresholds` the gate's (defaults:
        core/release/gate.DEFAULTS). Returns the release state."""
        wanted = {
            "mode": mode,
            "percent": float(percent),
            "port": int(port),
            "version": str(served.get("version", "")),
            "columns": served.get("columns", "[]"),
            "task": str(served.get("task", "")),
            "server_dir": str(server_dir or self.server_dir(port)),
            "thresholds": dict(thresholds or {}),
        }
        code, answer = self._release_request("PUT", "/release", wanted, "start the release")
        if code != 200:
            raise FrontError(
                f"The model's front refused the release ({code}): {answer.get('error', answer)}"
            )
        return answer

    def release_status(self) -> dict | None:
        """The last release's state from the running front (also once it ended); None
        when it never had one. When the front is not running, what it last wrote
        (release.json) with `"stale": true` (its candidate gets no traffic then)."""
        if self.port and process.is_alive(self.pid):
            try:
                code, answer = control_request(self.control_socket, "GET", "/release", timeout=5)
            except OSError:
                code, answer = 0, {}
            if code == 200:
                return answer or None
        try:
            state = json.loads(self.release_file.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(state, dict):
            state.pop("stats", None)  # the evidence in full, for a restarted front only
        return {**state, "stale": True} if state else None

    def release_end(self, outcome: str, by: str, reason: str = "", timeout: float = 60) -> dict:
        """End the active release: `promote` makes the candidate the backend, `abort`
        sends it no more traffic. Returns (the release state) once the server that
        leaves has no request in flight; an abort of an aborted release is answered too."""
        wanted = {"outcome": outcome, "by": by, "reason": reason, "timeout": timeout}
        code, answer = self._release_request(
            "POST", "/release/end", wanted, f"{outcome} the release", timeout + 10
        )
        if code != 200:
            raise FrontError(
                f"The model's front could not {outcome} the release ({code}): "
                f"{answer.get('error', answer)}"
            )
        return answer

    def _release_request(
        self, method: str, url: str, body: dict, what: str, timeout: float = 10
    ) -> tuple[int, dict]:
        if not (self.port and process.is_alive(self.pid)):
            raise FrontError(
                f"The model's front is not running, so it cannot {what}: "
                "`python run.py deploy` starts it"
            )
        try:
            return control_request(self.control_socket, method, url, body, timeout=timeout)
        except OSError as exc:
            raise FrontError(f"The model's front did not answer ({what}): {exc}") from exc

    # -- the release watcher: `release watch`, which ends a decided release ----------
    @property
    def watcher_log(self) -> Path:
        return self.dir / "release-watch.log"

    def watcher_pid(self) -> int | None:
        """The pid in release-watch.pid (None: none was started, or it ended by itself)."""
        try:
            return int((self.dir / "release-watch.pid").read_text())
        except (OSError, ValueError):
            return None

    def spawn_watcher(self) -> int:
        """Start `python run.py release watch` for this model, detached (its own
        session), logging to release-watch.log and its pid in release-watch.pid here.
        `release start` starts the first (steps/deployment/release.py); the front starts
        it again when it died during a release (router/supervise.py)."""
        command = [
            sys.executable, str(REPO_ROOT / "run.py"), "release", "watch",
            "--model-name", self.model_name, "--state-dir", str(self.state_dir),
        ]  # fmt: skip
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.watcher_log, "ab") as out:
            child = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT), start_new_session=True,
            )  # fmt: skip
        tmp = self.dir / "release-watch.pid.tmp"
        tmp.write_text(str(child.pid))
        tmp.replace(self.dir / "release-watch.pid")
        return child.pid

    def stop(self) -> None:
        """Stop the keeper and the front (one process group; a SIGTERM each: the front
        writes what it buffered). The record keeps the served state, without pids."""
        record = self.record()
        for pid in dict.fromkeys([record.get("group"), record.get("keeper"), record.get("pid")]):
            process.stop_group(pid, timeout=10)
        if self.record_file.exists():
            data = self.record()
            data["pid"] = data["keeper"] = None
            tmp = self.record_file.with_name("router.json.tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.record_file)


def watcher_alive(pid: int | None) -> bool:
    """Whether `pid` is a live `release watch` process."""
    command = command_line(pid) or []
    return process.is_alive(pid) and b"release" in command and b"watch" in command


def _clock(epoch) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))
    except (TypeError, ValueError):
        return "?"
