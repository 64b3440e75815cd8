"""A real ZenML server on 127.0.0.1 for tests: its own process, database and identity.

Started the way a cluster runs it (uvicorn serving `zenml.zen_server.zen_server_api`,
password authentication on), with its own global configuration: its server id is not the
client's user id, so ZenML's checks count it as a remote server, as they would a cluster's.
"""

from __future__ import annotations

import os
import sys

from tests.server_process import ServerProcess

PASSWORD = "zenkube-test-password"


class ZenmlServer(ServerProcess):
    name = "ZenML server"

    def client_env(self) -> dict[str, str]:
        """Environment that connects a ZenML client to this server (as `zenml login` would)."""
        return {
            "ZENML_STORE_URL": self.url,
            "ZENML_STORE_TYPE": "rest",
            "ZENML_STORE_USERNAME": "default",
            "ZENML_STORE_PASSWORD": PASSWORD,
        }

    def command(self) -> list[str]:
        return [
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
        ]

    def environment(self) -> dict[str, str]:
        return {
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
