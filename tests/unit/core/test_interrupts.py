"""A Ctrl-C stays a Ctrl-C, also when ZenML raises it inside a step as an Exception."""

from __future__ import annotations

import pytest
from zenml.exceptions import RunInterruptedException, RunStoppedException

from core.errors import ConfigError, interrupted, is_interrupt
from integrations.mlflow.registry import RegisteredModel
from steps.registry import promote


@pytest.mark.parametrize(
    "exc,expected",
    [
        (KeyboardInterrupt(), True),
        (SystemExit(2), True),
        (RunInterruptedException("The execution was interrupted."), True),
        (RunStoppedException("Pipeline run is stopped."), True),
        (ValueError("bad"), False),
        (ConfigError("fix it"), False),
    ],
)
def test_interrupts_are_told_from_errors(exc, expected):
    assert is_interrupt(exc) is expected


def test_an_error_raised_from_an_interrupt_is_an_interrupt():
    try:
        try:
            raise RunInterruptedException("The execution was interrupted.")
        except RunInterruptedException as inner:
            raise RuntimeError("Failed to deploy model server") from inner
    except RuntimeError as outer:
        assert interrupted(outer)
    assert not interrupted(RuntimeError("plain"))


def test_a_ctrl_c_while_the_champion_is_scored_stops_the_gate(monkeypatch):
    """Before: the step's `except Exception` made it 'the champion cannot be compared'."""

    def interrupted_read(uri):
        raise RunInterruptedException("The execution was interrupted.")

    monkeypatch.setattr(promote.mlflow_registry, "read_input_schema", interrupted_read)
    champion = RegisteredModel(name="m", version="1", model_uri="models:/m-1")
    with pytest.raises(RunInterruptedException):
        promote.compare_with_champion(champion, None, "f1", champion)
    monkeypatch.setattr(
        promote.mlflow_registry, "read_input_schema", lambda uri: (_ for _ in ()).throw(OSError())
    )
    assert promote.compare_with_champion(champion, None, "f1", champion).status == "incomparable"
