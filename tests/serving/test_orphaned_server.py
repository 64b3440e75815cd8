"""A model server no one looks after any more ends itself (runtime/orphan.py): real
servers started as a deploy starts them (`SeldonLocalService.provision`: the model copy,
the servers with their warm standby, the front and its keeper), a short grace
(ZENKUBE_ORPHAN_GRACE, which the servers inherit), and kill -9.

- front and keeper killed at once (Seldon, gunicorn with two workers, and a standby):
  every process of both replicas exits after the grace, each log says why, and the
  service reads as not running (what `deploy` and `serve repair` start again);
- the front killed alone (V2): its keeper restarts it, the server keeps serving past the
  grace, the same process; then its folder removed (the clone deleted): it exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid

import pytest
import requests

from integrations.seldon_local import process, replicas
from integrations.seldon_local.service import SeldonLocalService, SeldonLocalServiceConfig
from tests.serving import release_models

GRACE = 4.0
SLACK = 20.0  # a gunicorn arbiter stops its workers gracefully; a loaded machine is slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("orphan-models")
    return release_models.models(root, ("champion",))["champion"]


@pytest.fixture
def served(tmp_path, model_dir, monkeypatch):
    monkeypatch.setenv("ZENKUBE_ORPHAN_GRACE", str(GRACE))  # servers and front inherit it
    started: list[SeldonLocalService] = []

    def serve(protocol: str, count: int, workers: int = 1) -> SeldonLocalService:
        config = SeldonLocalServiceConfig(
            model_name=f"orphan-{protocol}", model_uri=str(model_dir), model_version="1",
            protocol=protocol, state_dir=str(tmp_path / "serving"), replicas=count,
            workers=workers, start_timeout=180,
        )  # fmt: skip
        service = SeldonLocalService(uuid=uuid.uuid4(), config=config)
        started.append(service)
        service.provision()
        return service

    yield serve
    for service in started:
        service.front.stop()
        replicas.stop_all(replicas.pids(service._record()), process.stop_group, 5)


def members(service: SeldonLocalService) -> list[int]:
    """Every live process of the service's replicas (their process groups)."""
    return [p for pid in replicas.pids(service._record()) for p in process.group_members(pid)]


def predicts(service: SeldonLocalService) -> bool:
    X, _ = release_models.data()
    body = service.protocol.request_body(release_models.COLUMNS, [X.iloc[0].tolist()])
    try:
        return requests.post(service.prediction_url, json=body, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check, timeout: float) -> float | None:
    """Seconds until `check()` was true (None: not within `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def test_a_server_whose_front_and_keeper_died_exits_after_the_grace(served):
    service = served("seldon", count=2, workers=2)
    left = members(service)
    assert len(left) >= 2 * 3, left  # each replica: gunicorn's arbiter and two workers
    front = service.front.record()
    # a round of the servers' watch (1 s) sees their front: from then on their starter,
    # this test, no longer looks after them
    time.sleep(2)
    os.killpg(front["group"], signal.SIGKILL)  # front and keeper, at once (one group)
    killed = time.monotonic()
    time.sleep(GRACE / 2)
    assert all(process.is_alive(p) for p in replicas.pids(service._record()))  # not yet
    gone = wait_for(lambda: not members(service), GRACE + SLACK)
    assert gone is not None, f"still running: {members(service)}"
    assert time.monotonic() - killed >= GRACE
    for replica in replicas.of(service._record()):
        log = (service.workdir / replica.log).read_text(errors="replace")
        assert "zenkube.server exits" in log, replica
        assert "neither its front nor the front's keeper has run for 4 s" in log
    # what `serve status` says; `deploy` and `serve repair` start such a server again
    # (test_v2_protocol's deploy after keeper, front and server were killed at once)
    state, why = service.check_status()
    assert (state.value, why) == ("inactive", "the server process is not running")


def test_a_server_outlives_its_front_s_restart_and_exits_when_its_folder_goes(served):
    service = served("v2", count=1)
    pid, keeper = service.pid, service.front.record()["keeper"]
    os.kill(service.front.pid, signal.SIGKILL)  # its keeper restarts it
    assert wait_for(lambda: (service.front.status() or {}).get("keeper") == keeper, 30)
    time.sleep(GRACE + 2)
    assert service.pid == pid and process.is_alive(pid) and predicts(service)
    assert "zenkube.server exits" not in service.log_file.read_text(errors="replace")
    shutil.rmtree(service.workdir)  # the clone deleted under a running front
    assert wait_for(lambda: not process.group_members(pid), 2 + SLACK) is not None
