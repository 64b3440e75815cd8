"""The protocol is one concept: its values and default once, one rule to choose it."""

from __future__ import annotations

import pytest

from core.protocol import DEFAULT_PROTOCOL, PROTOCOLS, choose
from core.specs import ContinuousTrainingParams, DeploymentParams


def test_what_is_asked_for_wins_then_what_is_served_then_the_config():
    assert choose("v2", "seldon", "seldon") == "v2"
    assert choose(None, "v2", "seldon") == "v2"  # a plain redeploy keeps the live protocol
    assert choose(None, None, "v2") == "v2"
    assert choose(None, None, None) == DEFAULT_PROTOCOL


def test_an_unknown_protocol_is_named_with_the_allowed_ones():
    with pytest.raises(ValueError, match="'grpc'.*seldon, v2"):
        choose("grpc", None)


def test_the_pipelines_ask_for_nothing_by_default_so_the_served_protocol_stays():
    for params in (DeploymentParams(), ContinuousTrainingParams()):
        assert params.protocol is None
        assert params.default_protocol == DEFAULT_PROTOCOL
    assert set(PROTOCOLS) == {"seldon", "v2"}
