"""The champion's two records (MLflow alias, ZenML stage) are read twice before zenkube
calls them a disagreement: a move elsewhere sets the stage with force (for a moment no
version holds it), which a pod reading at that moment took for a hand move (seen once
in test_submit_path's two concurrent scheduled runs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.errors import ConfigError
from integrations.mlflow import champion
from integrations.mlflow import registry as mlflow_registry


def reads(monkeypatch, stages: list[str | None]) -> list[str | None]:
    """The alias says v1 on every read; the stage says `stages`, one per read."""
    left = list(stages)
    monkeypatch.setattr(mlflow_registry, "configure_from_stack", lambda: None)
    monkeypatch.setattr(mlflow_registry, "get_champion", lambda name: SimpleNamespace(version="1"))

    def staged(name):
        version = left.pop(0)
        return (
            None if version is None else SimpleNamespace(run_metadata={"mlflow_version": version})
        )

    monkeypatch.setattr(champion, "zenml_version", staged)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return left


def test_a_stage_missing_for_one_read_is_read_again(monkeypatch):
    left = reads(monkeypatch, [None, "1"])
    assert champion.current("m").version == "1"
    assert left == []


def test_records_that_disagree_twice_stop_the_command(monkeypatch):
    reads(monkeypatch, [None, None])
    with pytest.raises(ConfigError, match="is v1 in MLflow .* but none in ZenML"):
        champion.current("m")
