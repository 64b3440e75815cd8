"""A real ZenML server on 127.0.0.1 for tests: its own process, database and identity.

Started the way a cluster runs it (uvicorn serving `zenml.zen_server.zen_server_api`,
password authentication on), with its own global configuration: its server id is not the
client's user id, so ZenML's checks count it as a remote server, as they would a cluster's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from integrations.seldon_local.process import stop_group

PASSWORD = "zenkube-test-password"


class ZenmlServer:
    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def client_env(self) -> dict[str, str]:
        """Environment that connects a ZenML client to this server (as `zenml login` would)."""
        return {
            "ZENML_STORE_URL": self.url,
            "ZENML_STORE_TYPE": "rest",
            "ZENML_STORE_USERNAME": "default",
            "ZENML_STORE_PASSWORD": PASSWORD,
        }

    def __enter__(self) -> ZenmlServer:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ZENML_STORE")},
            "ZENML_SERVER": "true",
            "ZENML_CONFIG_PATH": str(self.root / "config"),
            "ZENML_LOCAL_STORES_PATH": str(self.root / "stores"),
            "ZENML_SERVER_AUTO_ACTIVATE": "True",
            "ZENML_DEFAULT_USER_PASSWORD": PASSWORD,
            "ZENML_SERVER_JWT_SECRET_KEY": "zenkube-tests-" + os.urandom(8).hex(),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",
        }
        self.log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "zenml.zen_server.zen_server_api:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text()[-3000:])
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            "ZenML server did not start: " + (self.root / "server.log").read_text()[-3000:]
        )

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_group(self.process.pid, timeout=20)
        self.log.close()
