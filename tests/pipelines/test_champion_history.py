"""Champion history, rollback, the served protocol, and commands as transactions.

One model, two trained versions, real local servers. Interrupts are a real SIGINT sent to
this process at a hook point (a function the command calls at that moment), or, for a
killed command, a subprocess that kills itself with SIGKILL at such a point; each test
says which moment it exercises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests
from zenml.client import Client

from app import champions, loop, repair, runner, serving
from core.champion import locks
from core.errors import ConfigError, ZenkubeError
from integrations.mlflow import champion
from integrations.seldon_local import client, process
from integrations.seldon_local.front import ModelFront
from integrations.seldon_local.service import SeldonLocalService
from integrations.zenml_adapters import service_records
from tests.conftest import FAST_TRAINER, REPO_ROOT
from tests.serving.helpers import deploy_folder, stop_all

MODEL = "rolled"
# A Ctrl-C inside a pipeline's step may reach the caller as the step's failure.
INTERRUPTED = (KeyboardInterrupt, RuntimeError, ZenkubeError)
FAST = {**FAST_TRAINER, "gate.min_improvement": -1.0}  # promote whatever scores


def train(trees: int):
    return runner.train(
        None,
        {"model_name": MODEL, **FAST, "trainer.params": {"max_iter": trees, "random_state": 0}},
    )


@pytest.fixture(scope="module")
def trained(module_store):
    first, second = train(5), train(7)
    assert first.decision.promoted and second.decision.promoted
    yield first, second
    stop_all()


def deployer():
    return Client().active_stack.model_deployer


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """A SIGINT is Python's KeyboardInterrupt in each test, whatever an earlier test in the
    same worker process left installed (and put back after)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_at(monkeypatch, owner, name):
    """Send this process a real SIGINT when `owner.name` is called (then call it)."""
    assert threading.current_thread() is threading.main_thread()  # signals reach us here
    original = getattr(owner, name)

    def hooked(*args, **kwargs):
        monkeypatch.setattr(owner, name, original)  # once
        os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, hooked)


def agree_and_listed(moves: list[str]) -> None:
    """Alias and stage agree, and the history's newest entries are `moves` (newest first)."""
    current = champion.current(MODEL)  # ConfigError if alias and stage disagree
    events = champion.history(MODEL)
    assert [e["version"] for e in events[: len(moves)]] == moves
    assert current.version == moves[0]


def serves(version: str) -> str:
    (service,) = [s for s in deployer().services_for(MODEL) if s.is_running]
    assert service.config.model_version == version
    assert service_records.unfinished(SeldonLocalService, MODEL) == []
    return service.prediction_url


def test_history_says_who_moved_the_champion_and_rollback_brings_the_previous_one_back(trained):
    first, second = trained
    events = champion.history(MODEL)
    assert [e["version"] for e in events] == [second.registered.version, first.registered.version]
    assert events[0]["by"] == f"the gate ({second.run_name})"  # whole (issue #24)
    assert events[0]["reason"] == second.decision.reason
    served = runner.deploy(None, {"model_name": MODEL})
    assert served.model_version == second.registered.version

    back, replaced = champion.rollback(MODEL, None, "tester")
    assert (back.version, replaced) == (first.registered.version, second.registered.version)
    assert champion.current(MODEL).version == first.registered.version  # alias and stage
    latest = champion.history(MODEL)[0]
    assert latest["version"] == first.registered.version
    assert latest["by"] == "rollback by tester"
    assert latest["reason"] == f"rolled back from v{second.registered.version}"

    again = runner.deploy(None, {"model_name": MODEL})
    assert again.model_version == first.registered.version
    assert again.prediction_url == served.prediction_url
    (service,) = deployer().services_for(MODEL)
    assert service.is_running
    assert requests.get(again.health_url, timeout=5).status_code == 200

    with pytest.raises(ConfigError, match="is already the champion"):
        champion.rollback(MODEL, first.registered.version, "tester")
    forward, _ = champion.rollback(MODEL, second.registered.version, "tester")
    assert forward.version == champion.current(MODEL).version == second.registered.version


def test_a_long_run_name_is_kept_whole_in_the_history(trained):
    _, second = trained
    version = champion.zenml_version_for(MODEL, second.registered.version)
    by = "the gate (" + "continuous_training_pipeline-2026_12_01-10_03_33_012345" * 2 + ")"
    champion.promote(MODEL, second.registered.version, version, {}, by)
    assert champion.history(MODEL)[0]["by"] == by


def test_a_redeploy_a_rollback_and_a_retraining_redeploy_keep_the_v2_protocol(trained):
    first, second = trained
    said = []
    v2 = runner.deploy(None, {"model_name": MODEL, "protocol": "v2"})
    assert v2.protocol == "v2" and "/v2/models/" in v2.prediction_url
    again = runner.deploy(None, {"model_name": MODEL})  # nothing asked: what is served
    assert (again.protocol, again.service_id) == ("v2", v2.service_id)

    *_, info = champions.rollback(MODEL, first.registered.version, lambda *a, **k: said.append(a))
    assert info.protocol == "v2" and info.model_version == first.registered.version
    assert info.prediction_url == v2.prediction_url
    rows = serving.example_rows(MODEL, 2)
    assert len(client.predict(info.prediction_url, "v2", rows)) == 2

    path, shifted = loop.batch_file(MODEL, simulate_drift=True)  # labelled: an alert retrains
    result = loop.monitor(
        None, {"batch": path, "model_name": MODEL}, training_overrides=FAST, echo=said.append
    )
    assert result.retraining is not None and result.retraining.decision.promoted, shifted
    assert result.deployment.protocol == "v2"
    assert result.deployment.prediction_url == v2.prediction_url
    (service,) = deployer().services_for(MODEL)
    assert service.config.protocol == "v2"


def test_ctrl_c_while_a_new_server_is_proven_leaves_the_served_one_serving(trained, monkeypatch):
    """Moment: the new server runs and is being smoke-tested (before any traffic moves)."""
    served = deployer().services_for(MODEL)[0]
    before = served.config.model_version
    sigint_at(monkeypatch, process, "smoke_test")
    with pytest.raises(KeyboardInterrupt):
        deploy_folder(MODEL, served.model_dir, "ctrl-c", protocol=served.config.protocol)
    url = serves(before)
    rows = serving.example_rows(MODEL, 2)
    assert len(client.predict(url, served.config.protocol, rows)) == 2


def test_ctrl_c_during_the_switch_completes_it_then_stops(trained, monkeypatch):
    """Moment: the front is switching to the proven server (an uninterrupted step)."""
    served = deployer().services_for(MODEL)[0]
    sigint_at(monkeypatch, ModelFront, "switch")
    with pytest.raises(KeyboardInterrupt):
        deploy_folder(MODEL, served.model_dir, "switched", protocol=served.config.protocol)
    url = serves("switched")  # the switch, its record and the old record's removal all done
    assert not served.workdir.exists()
    assert len(client.predict(url, served.config.protocol, serving.example_rows(MODEL, 2))) == 2
    champion_version = champion.current(MODEL).version
    assert runner.deploy(None, {"model_name": MODEL}).model_version == champion_version


KILLED_DEPLOY = """
import os, sys
sys.path.insert(0, {root!r})
from stacks.env import prepare_environment, prepare_zenml
prepare_environment(); prepare_zenml()
from zenml.client import Client
import importlib
owner = importlib.import_module({module!r})
for name in {owners!r}:
    owner = getattr(owner, name)
def die(*a, **k):
    os.kill(os.getpid(), 9)
setattr(owner, {attr!r}, die)
from tests.serving.helpers import deploy_folder
deploy_folder({model!r}, {folder!r}, {version!r}, protocol={protocol!r})
"""


def killed_deploy(hook: str, folder, version: str, protocol: str) -> None:
    """`deploy` in another process that kills itself (SIGKILL) when it reaches `hook`
    ("module:Owner.function" or "module:function")."""
    module, path = hook.split(":")
    *owners, attr = path.split(".")
    code = KILLED_DEPLOY.format(
        root=str(REPO_ROOT), module=module, owners=owners, attr=attr, model=MODEL,
        folder=str(folder), version=version, protocol=protocol,
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], timeout=300)
    assert done.returncode == -9


def test_a_deploy_killed_before_the_switch_is_repaired_by_the_next_command(trained):
    """Moment: kill -9 after the new server passed its checks, before traffic moved. It
    leaves a proven server and an unfinished ZenML service record (once the cause of "A
    service with the same configuration already exists")."""
    served = deployer().services_for(MODEL)[0]
    before, protocol = served.config.model_version, served.config.protocol
    killed_deploy(
        "integrations.seldon_local.model_deployer:SeldonLocalModelDeployer.switch",
        served.model_dir, "killed", protocol,
    )  # fmt: skip
    (left,) = service_records.unfinished(SeldonLocalService, MODEL)
    assert process.is_alive(left.pid)  # the proven server of the killed deploy
    fixed = repair.repair(MODEL, echo=lambda *a, **k: None)
    assert any(str(left.uuid) in line and "unfinished" in line for line in fixed), fixed
    assert not process.is_alive(left.pid) and not left.workdir.exists()
    serves(before)
    # The same deploy again works (its record no longer collides) and serves.
    new = deploy_folder(MODEL, served.model_dir, "killed", protocol=protocol)
    serves("killed")
    assert repair.repair(MODEL, echo=lambda *a, **k: None) == []
    assert new.is_running


def test_a_deploy_killed_after_the_switch_is_completed_by_the_next_command(trained):
    """Moment: kill -9 after the front switched, before the record was finished."""
    served = deployer().services_for(MODEL)[0]
    killed_deploy(
        "integrations.zenml_adapters.service_records:save", served.model_dir, "after-switch",
        served.config.protocol,
    )  # fmt: skip
    champion_version = champion.current(MODEL).version
    info = runner.deploy(None, {"model_name": MODEL})  # repairs first, then deploys
    assert info.model_version == champion_version
    serves(champion_version)
    assert len(client.predict(info.prediction_url, info.protocol, serving.example_rows(MODEL, 2)))


def test_rollback_interrupted_at_its_moves_is_undone_and_listed(trained, monkeypatch):
    """Moments: (1) during the champion move, (2) while the redeploy proves the new server.
    Either way the champion goes back to the one served, and history lists every move."""
    first, second = trained
    champion.set_by_hand(MODEL, second.registered.version, "tester")
    runner.deploy(None, {"model_name": MODEL})
    v1, v2 = first.registered.version, second.registered.version
    quiet = lambda *a, **k: None  # noqa: E731

    from integrations.mlflow import registry as mlflow_registry

    sigint_at(monkeypatch, mlflow_registry, "set_champion")
    with pytest.raises(KeyboardInterrupt):
        champions.rollback(MODEL, v1, quiet)
    agree_and_listed([v2, v1, v2])  # rolled back to v1, then put back to v2
    assert champion.history(MODEL)[0]["reason"].startswith(f"put back from v{v1}")
    serves(v2)

    sigint_at(monkeypatch, process, "smoke_test")
    with pytest.raises(INTERRUPTED):
        champions.rollback(MODEL, v1, quiet)
    agree_and_listed([v2, v1, v2, v1, v2])
    serves(v2)
    assert runner.deploy(None, {"model_name": MODEL}).model_version == v2


def test_ctrl_c_during_the_gates_promotion_leaves_a_listed_champion(trained, monkeypatch):
    """Moment: train's promote step, between the MLflow alias and the ZenML stage."""
    from integrations.mlflow import registry as mlflow_registry

    before = champion.current(MODEL).version
    sigint_at(monkeypatch, mlflow_registry, "set_champion")
    with pytest.raises(INTERRUPTED):
        train(9)
    now = champion.current(MODEL).version  # alias and stage agree
    assert now != before  # the move had begun, so it completed, with its history entry
    assert champion.history(MODEL)[0]["version"] == now
    assert champion.history(MODEL)[0]["by"].startswith("the gate (")
    assert runner.deploy(None, {"model_name": MODEL}).model_version == now


def test_a_second_command_on_the_model_waits_or_is_refused_with_a_sentence(trained, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(REPO_ROOT)!r})
            from core.champion import locks
            with locks.model_lock({MODEL!r}, "deploy", echo=None):
                print("held", flush=True)
                time.sleep(float(sys.argv[1]))
            """), "4"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        held_at = time.monotonic()
        monkeypatch.setenv("ZENKUBE_LOCK_TIMEOUT", "1")
        with pytest.raises(locks.ModelBusy, match=rf"`deploy` \(pid {holder.pid}\)"):
            runner.deploy(None, {"model_name": MODEL}, echo=lambda *a, **k: None)
        monkeypatch.setenv("ZENKUBE_LOCK_TIMEOUT", "60")
        said = []
        info = runner.deploy(None, {"model_name": MODEL}, echo=said.append)
        assert any("waits for it to finish" in line for line in said), said
        assert time.monotonic() - held_at >= 4  # it ran only once the first had finished
        assert info.model_version == champion.current(MODEL).version
    finally:
        holder.kill()


def test_a_damaged_served_copy_is_fetched_again_when_the_server_restarts(trained):
    info = runner.deploy(None, {"model_name": MODEL})
    (service,) = deployer().services_for(MODEL)
    (service.model_dir / "MLmodel").unlink()  # once: `[Errno 39] ... model.partial/artifacts`
    deployer().stop_model_server(service.uuid, timeout=30)
    again = runner.deploy(None, {"model_name": MODEL})  # restarts the same deployment
    assert again.service_id == info.service_id
    assert (service.model_dir / "MLmodel").exists()
    assert len(client.predict(again.prediction_url, again.protocol, serving.example_rows(MODEL, 2)))
