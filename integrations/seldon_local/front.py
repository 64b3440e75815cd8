"""Start, switch and stop the front (router.py) of one served model.

One front per registered model name, on the stable port clients call; it outlives the
model servers behind it. Its record (`fronts/<model>/router.json`) says pid, port and the
backend port it forwards to.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import requests

from integrations.seldon_local import process

ROUTER = Path(__file__).resolve().parent / "router.py"


class FrontError(RuntimeError):
    pass


class ModelFront:
    def __init__(self, state_dir: str | Path, model_name: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
        self.dir = Path(state_dir) / "fronts" / safe
        self.record_file = self.dir / "router.json"
        self.log_file = self.dir / "router.log"

    def record(self) -> dict:
        try:
            return json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def port(self) -> int | None:
        return self.record().get("port")

    @property
    def pid(self) -> int | None:
        return self.record().get("pid")

    @property
    def control_url(self) -> str:
        return f"http://{process.HOST}:{self.port}/_zenkube"

    def status(self) -> dict | None:
        """What the running front says about itself, or None when it does not answer."""
        if not (self.port and process.is_alive(self.pid)):
            return None
        try:
            answer = requests.get(f"{self.control_url}/router", timeout=2)
        except requests.RequestException:
            return None
        return answer.json() if answer.status_code == 200 else None

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
        command = [
            sys.executable, str(ROUTER),
            "--port", str(port), "--backend", str(backend), "--record", str(self.record_file),
        ]  # fmt: skip
        for key, value in {**(served or {}), **(traffic or {})}.items():
            command += [f"--{key}", str(value)]
        pid = process.spawn(command, self.log_file, {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status and status["pid"] == pid:
                return
            if not process.is_alive(pid):
                break
            time.sleep(0.1)
        process.stop_group(pid)
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
    ) -> None:
        """Send new requests to `backend`; return once the `drain` ports have none in flight."""
        answer = requests.put(
            f"{self.control_url}/backend", json={"port": backend, **(served or {})}, timeout=5
        )
        if answer.status_code != 200 or answer.json().get("backend") != backend:
            raise FrontError(f"The model's front refused the switch: {answer.text[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inflight = (self.status() or {}).get("inflight", {})
            if not any(inflight.get(str(p)) for p in drain):
                return
            time.sleep(0.05)

    def stop(self) -> None:
        process.stop_group(self.pid, timeout=10)
        if self.record_file.exists():
            data = self.record()
            data["pid"] = None
            self.record_file.write_text(json.dumps(data))
