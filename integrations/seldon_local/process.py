"""Start, watch and stop a model-server process on loopback (plain functions, no ZenML)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from core.errors import ZenkubeError
from integrations.seldon_local.pids import is_alive  # process.is_alive for its callers
from integrations.seldon_local.runtime.loopback import free_port  # noqa: F401 (its callers)

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
HOST = "127.0.0.1"


class ServerStartError(ZenkubeError):
    """A new model server did not become healthy or failed its smoke prediction."""


@dataclass(frozen=True)
class Protocol:
    """How to start and talk to one kind of model server.

    Attributes:
        name: `seldon` (Seldon Core v1 REST) or `v2` (Open Inference Protocol).
        health_path: answers 200 once the model is loaded.
        predict_path: where predictions are posted; {model} is the model name.
    """

    name: str
    health_path: str
    predict_path: str

    def command(self, python: Path, model_dir: Path, model_name: str, port: int, workers: int):
        launcher = "launch_seldon.py" if self.name == "seldon" else "launch_mlserver.py"
        return [
            str(python), str(RUNTIME_DIR / launcher),
            "--model-uri", str(model_dir), "--model-name", model_name,
            "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip

    def url(self, port: int, model_name: str, path: str) -> str:
        return f"http://{HOST}:{port}{path.format(model=model_name)}"

    @property
    def codec(self):
        """The protocol's wire codec (core/protocol/seldon.py or v2.py)."""
        from core.protocol import seldon, v2

        return seldon if self.name == "seldon" else v2

    def request_body(self, columns: list[str], rows: list[list]) -> dict:
        """A JSON body for these rows; NaN (not valid JSON) is sent as null, i.e. missing."""
        return self.codec.encode_request(columns, rows)

    def predictions(self, body: dict) -> list:
        return self.codec.decode_response(body)[1]


PROTOCOLS = {
    "seldon": Protocol("seldon", "/health/ping", "/api/v1.0/predictions"),
    "v2": Protocol("v2", "/v2/models/{model}/ready", "/v2/models/{model}/infer"),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ZenkubeError(f"Unknown protocol '{name}': use 'seldon' (v1 REST) or 'v2'.")
    return PROTOCOLS[name]


def tree_digest(folder: Path) -> str:
    """SHA-256 over a folder's files: their relative paths and contents, in sorted order
    (the served model copy's, checked before a server starts and restarts)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # Servers bind with SO_REUSEADDR, so connections in TIME_WAIT do not block them.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def spawn(
    command: list[str], log_file: Path, env: dict[str, str], record_launch: bool = True
) -> int:
    """Start a detached server in its own process group (it outlives the pipeline run).

    With `record_launch`, how it was started (command, extra environment, log) is kept
    beside its log as `<log>.launch.json` (0600): the model's front restarts it from that
    if it dies."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if record_launch:
        spec = log_file.with_name(log_file.stem + ".launch.json")
        fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"command": command, "env": env, "log": str(log_file)}, f)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            cwd=str(RUNTIME_DIR),
            start_new_session=True,
        )
    return process.pid


def unix_address(path: Path, folder_fd: int | None = None) -> str:
    """The address to bind or connect a Unix socket at `path`. Linux caps it at 107 bytes;
    a longer path is reached through /proc/self/fd/<an open fd of its folder>."""
    if len(os.fsencode(path)) < 100 or folder_fd is None:
        return str(path)
    return f"/proc/self/fd/{folder_fd}/{path.name}"


def stop_group(pid: int | None, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left (Seldon leaves workers)."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    kill_group(pid)


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group at once, as the kernel ends every process of a container
    whose main process died (pid_namespaces(7)): none of them answers another request.
    A server whose leader is dead gets this, not a SIGTERM: Seldon's metrics Manager
    (a child of the leader) dies at SIGTERM while its gunicorn worker finishes the request
    it holds, and that request's metrics update then fails: the worker answers HTTP 500
    "[Errno 32] Broken pipe" (or "[Errno 104] Connection reset by peer"). Killed at once,
    the request is cut off instead, and the front sends it to another replica."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    # SIGKILL is delivered, not done: wait (briefly) until the group is really gone, so
    # whoever stopped it can rely on its port and its processes being free.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not _group_alive(pid):
            break
        time.sleep(0.05)


def group_members(pgid: int | None) -> list[int]:
    """Live processes in the process group `pgid` (workers outlive a killed leader)."""
    if not pgid:
        return []
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid_of(p) == pgid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return is_alive(pgid) or any(_pgid_of(p) == pgid for p in os.listdir("/proc") if p.isdigit())


def _pgid_of(pid: str) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
        return int(fields[2]) if fields[0] != "Z" else None
    except (OSError, IndexError, ValueError):
        return None


def server_state(
    pid: int | None, backend_port: int | None, front, protocol: Protocol, served_name: str,
    model_name: str, standbys: list[tuple[int | None, int]] = (),
) -> tuple[str, str]:  # fmt: skip
    """A local model server's state as ZenML's `ServiceState` values name them (active,
    inactive, error; pending_startup while the front's keeper restarts the front) and
    why: its processes (the primary on `backend_port`, and its warm `standbys`, (pid,
    port) each: replicas.py; one alive and healthy is enough), whether the model's
    `front` (a ModelFront) forwards to it (as the champion, or as a running release's
    candidate), its health. No ZenML here: `serve status` reads it without ZenML."""
    alive = [(p, port) for p, port in [(pid, backend_port), *standbys] if is_alive(p)]
    if not alive:
        left = group_members(pid)
        if left:
            return "error", (
                f"the server's main process is gone but {len(left)} of its worker "
                f"process(es) still run (pids {', '.join(map(str, left[:5]))}); "
                f"`python run.py deploy --model-name {model_name}` replaces them, "
                f"`python run.py serve stop --model-name {model_name}` ends them"
            )
        return "inactive", "the server process is not running"
    status = front.status()
    release = (status or {}).get("release") or {}
    candidate = release.get("active") and (
        (release.get("candidate") or {}).get("port") == backend_port
    )
    if status is None and is_alive(front.pid):  # alive: not the keeper's to restart
        return "error", (
            "the model's front runs but does not answer on its control socket (starting, "
            "busy or stuck: if it stays so, `python run.py deploy` replaces it)"
        )
    if status is None and front.keeper_alive():
        return "pending_startup", "the model's front is restarting (its keeper restarts it)"
    if status is None:
        return "inactive", (  # `serve status` adds the command that starts it again
            "the model's front is down (its process and the keeper that restarts it are "
            "gone), so no request reaches this server"
        )
    if status.get("backend") != backend_port and not candidate:
        return "inactive", "the model's front is not forwarding to this server"
    why = ""
    for _, port in alive:  # the first healthy replica is enough: the front sends it requests
        try:  # a loaded server answers slowly
            response = requests.get(
                protocol.url(port, served_name, protocol.health_path), timeout=10
            )
        except requests.RequestException as exc:
            why = why or f"health check failed: {exc}"
            continue
        if response.status_code == 200:
            return "active", ""
        why = why or f"health check answered HTTP {response.status_code}"
    return "error", why


def log_tail(log_file: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_healthy(pid: int, url: str, log_file: Path, timeout: float) -> None:
    """Poll the health URL until 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise ServerStartError(
                f"The model server exited during start-up. Last log lines ({log_file}):\n"
                + log_tail(log_file)
            )
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise ServerStartError(
        f"The model server did not become healthy within {timeout:.0f}s. Last log lines "
        f"({log_file}):\n" + log_tail(log_file)
    )


def smoke_test(protocol: Protocol, port: int, model_name: str, model_dir: Path) -> list:
    """Post the model's own input example; it must answer 200 with one prediction per row."""
    example = json.loads((model_dir / "input_example.json").read_text())
    columns, rows = example["columns"], example["data"]
    response = requests.post(
        protocol.url(port, model_name, protocol.predict_path),
        json=protocol.request_body(columns, rows),
        timeout=30,
    )
    if response.status_code != 200:
        raise ServerStartError(
            f"Smoke prediction failed with HTTP {response.status_code}: {response.text[:500]}"
        )
    predictions = protocol.predictions(response.json())
    if len(predictions) != len(rows):
        raise ServerStartError(f"Smoke prediction returned {len(predictions)} rows for {len(rows)}")
    return predictions
