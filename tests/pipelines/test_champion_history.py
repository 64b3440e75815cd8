"""Champion history and rollback: who moved the champion, and bringing the previous one back."""

from __future__ import annotations

import pytest
import requests
from zenml.client import Client

from app import runner
from core.errors import ConfigError
from integrations import champion
from tests.conftest import FAST_TRAINER
from tests.serving.helpers import stop_all

MODEL = "rolled"


def train(trees: int):
    return runner.train(
        None,
        {
            "model_name": MODEL,
            **FAST_TRAINER,
            "trainer.params": {"n_estimators": trees, "random_state": 0},
            "gate.min_improvement": -1.0,  # promote whatever scores
        },
    )


def test_history_says_who_moved_the_champion_and_rollback_brings_the_previous_one_back(
    module_store,
):
    first, second = train(5), train(7)
    assert first.decision.promoted and second.decision.promoted
    events = champion.history(MODEL)
    assert [e["version"] for e in events] == [second.registered.version, first.registered.version]
    assert events[0]["by"] == f"the gate ({second.run_name})"
    assert events[0]["reason"] == second.decision.reason[:100]
    try:
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
        (service,) = Client().active_stack.model_deployer.services_for(MODEL)
        assert service.is_running
        assert requests.get(again.health_url, timeout=5).status_code == 200

        with pytest.raises(ConfigError, match="is already the champion"):
            champion.rollback(MODEL, first.registered.version, "tester")
        forward, _ = champion.rollback(MODEL, second.registered.version, "tester")
        assert forward.version == champion.current(MODEL).version == second.registered.version
    finally:
        stop_all()
