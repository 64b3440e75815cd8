"""A redeploy under load loses no request, on both protocols (real servers, real HTTP).

Eight clients post continuously to the stable URL while a new version is deployed; the
model's front switches to the new server only after it proved itself (on V2 here as two
replicas, as a user's deploy runs: both up before the switch), and stops the old one only
after its requests finished; `serve stop` then ends every replica.
"""

from __future__ import annotations

import time

import pytest
import requests
from zenml.client import Client

from app import runner, serving
from integrations.seldon_local import client
from integrations.seldon_local.process import get_protocol, is_alive
from tests.serving.helpers import deploy_folder, stop_all, train_champion
from tests.serving.load import ClientThreads

CLIENTS = 8


class Load(ClientThreads):
    """Clients that post the same rows in a loop, each on its own keep-alive session."""

    def __init__(self, url: str, body: dict, rows: int):
        self.url, self.body, self.rows = url, body, rows
        self.ok = 0
        self.failures: list[str] = []
        super().__init__(CLIENTS)

    def run(self, client: int) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                answer = session.post(self.url, json=self.body, timeout=30)
                good = answer.status_code == 200
                reason = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except requests.RequestException as exc:
                good, reason = False, repr(exc)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failures.append(reason)
            time.sleep(0.01)


@pytest.mark.parametrize("protocol", ["seldon", "v2"])
def test_a_redeploy_under_load_from_eight_clients_loses_no_request(
    module_store, protocol, monkeypatch
):
    name = f"swap-{protocol}"
    _, test, _ = train_champion(name)
    # V2: the new version as a user's deploy runs it, a primary and a warm standby (the
    # old one alone: its standby would cost the suite a start and test no other code)
    replicas = 2 if protocol == "v2" else 1
    try:
        first = runner.deploy(None, {"model_name": name, "protocol": protocol})
        deployer = Client().active_stack.model_deployer
        (old,) = deployer.services_for(name)
        old_pids, folder = [old.pid, *dict(old.standbys)], old.model_dir
        assert all(is_alive(p) for p in old_pids)
        body = client.request_body(protocol, test.features.head(5))
        monkeypatch.setenv("ZENKUBE_REPLICAS", str(replicas))
        with Load(first.prediction_url, body, 5) as load:
            time.sleep(1.0)
            before = load.ok
            swapped = deploy_folder(name, folder, "2", protocol=protocol)
            during = load.ok - before
            time.sleep(1.0)
        assert load.failures == [], load.failures[:5]
        assert before > 0 and during > 0 and load.ok > before + during
        assert swapped.prediction_url == first.prediction_url  # the same stable URL
        (current,) = deployer.services_for(name)
        assert current.config.model_version == "2" and current.is_running
        # the new version's replicas were all up before the switch (none failed meanwhile)
        assert len(current.standbys) == replicas - 1
        assert all(is_alive(pid) for pid, _ in current.standbys)
        assert not any(is_alive(p) for p in old_pids)  # the old ones drained, then stopped
        answer = requests.post(first.prediction_url, json=body, timeout=10)
        assert len(get_protocol(protocol).predictions(answer.json())) == 5
        new_pids = [current.pid, *dict(current.standbys)]
        serving.stop(name, echo=lambda *a, **k: None)  # `serve stop`
        assert not any(is_alive(p) for p in new_pids)  # every replica ended
    finally:
        stop_all()


def test_ctrl_c_while_the_new_server_starts_leaves_the_old_one_serving_and_nothing_behind(
    module_store, monkeypatch
):
    from integrations.seldon_local import process

    name = "swap-interrupted"
    _, test, _ = train_champion(name)
    try:
        first = runner.deploy(None, {"model_name": name, "protocol": "seldon"})
        deployer = Client().active_stack.model_deployer
        (old,) = deployer.services_for(name)
        started = []
        real_spawn, real_wait = process.spawn, process.wait_healthy
        monkeypatch.setattr(
            process, "spawn", lambda *a: started.append(real_spawn(*a)) or started[-1]
        )

        def interrupted(pid, *args):
            real_wait(pid, *args)
            raise KeyboardInterrupt  # Ctrl-C once the new server is up, before the switch

        monkeypatch.setattr(process, "wait_healthy", interrupted)
        with pytest.raises(KeyboardInterrupt):
            deploy_folder(name, old.model_dir, "2")
        (new_pid,) = started
        assert not is_alive(new_pid)  # the interrupted server was stopped
        assert old.is_running
        body = client.request_body("seldon", test.features.head(3))
        answer = requests.post(first.prediction_url, json=body, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["data"]["ndarray"]) == 3
    finally:
        stop_all()
