"""`deploy --dry-run` without `--model-uri` reads the champion from the stack's MLflow
server; one that does not answer is said at once, in one paragraph with both fixes, before
MLflow's client (and its HTTP retries) is asked."""

from __future__ import annotations

import socket

import pytest

from app import dry_run
from core.errors import ConfigError
from integrations.seldon_local.runtime.loopback import free_port


def spec(tracking_uri: str) -> dict:
    tracker = {"flavor": "mlflow", "configuration": {"tracking_uri": tracking_uri}}
    return {"components": {"experiment_tracker": [tracker]}}


def test_an_mlflow_server_that_does_not_answer_is_said_with_the_fixes():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ConfigError) as raised:
        dry_run.champion(spec(uri), "House_Prices", None, None)
    message = str(raised.value)
    assert f"'House_Prices' from the stack's MLflow server at {uri}" in message
    assert "does not answer from here" in message and "refused" in message
    assert "--model-uri s3://" in message and "set ZENKUBE_MLFLOW_URI" in message
    assert "\n" not in message


def test_a_server_that_accepts_but_never_answers_is_given_up_on(monkeypatch):
    monkeypatch.setattr(dry_run, "CONNECT_TIMEOUT", 0.5)
    with socket.socket() as listener:  # the kernel accepts; nobody reads or replies
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert dry_run._unanswered(uri) == "timed out"


def test_a_cluster_service_uri_gets_its_port_forward():
    hint = dry_run._forward("http://mlflow.tracking.svc.cluster.local:8080")
    assert "kubectl -n tracking port-forward svc/mlflow 5000:8080" in hint
    assert "ZENKUBE_MLFLOW_URI=http://localhost:5000" in hint
    assert "ZENKUBE_MLFLOW_URI to its address" in dry_run._forward("https://mlflow.example.com")


def test_a_given_model_uri_asks_no_server():
    model = dry_run.champion(spec("http://127.0.0.1:9"), "m", "s3://b/m", None)
    assert model.model_uri == model.artifact_location == "s3://b/m"
