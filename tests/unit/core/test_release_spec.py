"""ReleaseSpec: the `release:` block of configs/deployment.yaml."""

import pytest
from pydantic import ValidationError

from core.specs import ReleaseSpec, ReleaseThresholds


def test_the_defaults_are_todays_swap_and_the_designs_thresholds():
    spec = ReleaseSpec()
    assert spec.mode == "swap"
    assert spec.canary_percent == 10
    assert spec.thresholds.model_dump() == {
        "min_requests": 200,
        "max_5xx_increase": 0.01,
        "max_4xx_increase": 0.05,
        "max_p95_latency_ratio": 1.5,
        "max_p50_latency_increase_ms": 30,
        "max_prediction_shift": 0.2,
        "min_labelled": 50,
        "max_quality_drop": 0.02,
        "budget_seconds": 1800,
        "budget_requests": 20000,
        "require_labels": False,
    }


def test_a_partial_thresholds_block_keeps_the_other_defaults():
    spec = ReleaseSpec.model_validate(
        {"mode": "canary", "canary_percent": 25, "thresholds": {"min_requests": 20}}
    )
    assert (spec.mode, spec.canary_percent) == ("canary", 25)
    assert spec.thresholds.min_requests == 20
    assert spec.thresholds.budget_requests == 20000


@pytest.mark.parametrize(
    "raw, says",
    [
        ({"mode": "blue-green"}, "'blue-green' is not a release mode: use swap"),
        ({"canary_percent": 0}, "greater than 0"),
        ({"canary_percent": 100}, "less than 100"),
        ({"thresholds": {"min_request": 5}}, "Extra inputs are not permitted"),
        ({"thresholds": {"max_5xx_increase": 2}}, "less than or equal to 1"),
        ({"thresholds": {"max_p95_latency_ratio": 0.5}}, "greater than or equal to 1"),
        ({"thresholds": {"budget_seconds": 0}}, "greater than 0"),
        (
            {"thresholds": {"min_requests": 500, "budget_requests": 100}},
            "budget_requests (100) is below min_requests (500)",
        ),
        ({"percent": 10}, "Extra inputs are not permitted"),
    ],
)
def test_bad_release_settings_are_refused_with_a_reason(raw, says):
    with pytest.raises(ValidationError) as caught:
        ReleaseSpec.model_validate(raw)
    assert says in str(caught.value)


def test_the_thresholds_are_what_the_gate_takes():
    assert set(ReleaseThresholds().model_dump()) == set(ReleaseThresholds.model_fields)
